using business from '../db/schema';

@(path: '/business')
service BusinessService {
  entity Companies as projection on business.Companies;

  // A function import: the sum of the share capital of the active companies of a city.
  function TotalShareCapital(City : String) returns Decimal(15, 2);
}
