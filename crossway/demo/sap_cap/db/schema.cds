// The business register of a (fictional) agency, modelled the way SAP Gateway services look:
// PascalCase properties, a GUID key, Edm.Decimal amounts and Edm.DateTime timestamps.
namespace business;

entity Companies {
  key ID           : UUID;
      RegistryCode : String(8) not null;
      Name         : String(120) not null;
      City         : String(60);
      ShareCapital : Decimal(15, 2);
      RegisteredAt : DateTime;
      Status       : String(10) default 'ACTIVE';
}
