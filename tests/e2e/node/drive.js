// Drives the unmodified node-harvest-api 1.0.6 (npm) through the gateway and prints, as one JSON
// object, what each of its calls gave the app. Only its base URL changes: `harvest.url`, a plain
// property its constructor sets to https://api.harvestapp.com/api/v2/.
//   node drive.js GATEWAY_URL ACCOUNT_ID TOKEN USER_AGENT
'use strict'

const Harvest = require('node-harvest-api')

const [base, accountId, token, userAgent] = process.argv.slice(2)
// The client never rejects: a refused connection would leave its promise pending forever.
setTimeout(() => { console.error('timed out'); process.exit(2) }, 60000).unref()

async function main () {
  const harvest = new Harvest(accountId, token, userAgent)
  harvest.url = base.replace(/\/$/, '') + '/api/v2/'
  const out = {}
  out.me = (await harvest.users.find('me')).email
  out.meAgain = (await harvest.users.find('me')).email
  out.users = (await harvest.users.all()).length
  // Every page, followed by its next_page number (per_page 100 by default).
  const entries = await harvest.time_entries.all()
  out.timeEntries = entries.length
  out.distinctTimeEntries = new Set(entries.map(e => e.id)).size
  const page1 = await harvest.projects.get({ page: 1, per_page: 2 })
  const page2 = await harvest.projects.get({ page: 2, per_page: 2 })
  out.projectPages = [page1.map(p => p.id), page2.map(p => p.id)]
  const invoices = await harvest.invoices.all()
  out.invoiceStates = invoices.map(i => i.state).sort()
  const paid = invoices.find(i => i.state === 'paid')
  // invoices/{id}/messages, by the client's own "pipe" to a sub-resource.
  out.paidInvoiceMessages = (await harvest.invoices.pipe(paid.id).messages.all()).map(m => m.event_type)
  const created = await harvest.time_entries.create({
    project_id: entries[0].project.id,
    task_id: entries[0].task.id,
    spent_date: '2026-11-28',
    hours: 1.5,
    notes: 'first'
  })
  out.created = { hours: created.hours, notes: created.notes }
  // From here on every request carries Content-Type: application/json, GETs included: the
  // client adds it to its shared headers on its first write.
  out.read = (await harvest.time_entries.find(created.id)).notes
  out.readAgain = (await harvest.time_entries.find(created.id)).notes
  out.updated = (await harvest.time_entries.update(created.id, { notes: 'second' })).notes
  out.afterUpdate = (await harvest.time_entries.find(created.id)).notes
  // Its delete sends none of its headers (no token, account or User-Agent): Harvest refuses it.
  out.deleted = await harvest.time_entries.delete(created.id)
  out.afterDelete = (await harvest.time_entries.find(created.id)).notes
  console.log(JSON.stringify(out))
}

main().catch(err => { console.error(err); process.exit(1) })
