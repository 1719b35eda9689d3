// Business rules of the register, answered the way SAP Gateway answers: HTTP 400 with the
// message in error.message.value and the offending property as the target.
const cds = require('@sap/cds')

module.exports = class BusinessService extends cds.ApplicationService {
  init() {
    const { Companies } = this.entities

    this.before(['CREATE', 'UPDATE'], Companies, (req) => {
      const { ShareCapital, RegistryCode } = req.data
      if (ShareCapital !== undefined && ShareCapital !== null && Number(ShareCapital) < 2500) {
        req.error(400, 'Share capital must be at least 2500.00 EUR', 'ShareCapital')
      }
      if (RegistryCode !== undefined && !/^\d{8}$/.test(RegistryCode)) {
        req.error(400, 'Registry code must have exactly 8 digits', 'RegistryCode')
      }
    })

    this.on('TotalShareCapital', async (req) => {
      const rows = await SELECT.from(Companies)
        .columns('ShareCapital')
        .where({ City: req.data.City, Status: 'ACTIVE' })
      const cents = rows.reduce((sum, row) => sum + Math.round(Number(row.ShareCapital ?? 0) * 100), 0)
      return (cents / 100).toFixed(2)
    })

    return super.init()
  }
}
