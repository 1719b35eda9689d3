// The demo's business register and the SAP OData V2 adapter's test server: SAP CAP behind the
// OData V2 adapter, bound to loopback, with the parts of SAP Gateway's behaviour that CAP lacks
// emulated here:
// - CSRF protection: a write without the current token gets 403 and `x-csrf-token: Required`;
//   `x-csrf-token: Fetch` on a GET or HEAD returns the token.
// - optional basic authentication (SAP_TEST_USER / SAP_TEST_PASSWORD in the environment);
// - a `/__test` control API the tests use to rotate the token, slow the backend and read counters,
//   and to see the exchange context (crossway-* and traceparent headers) of the latest requests.
const cds = require('@sap/cds')
const express = require('express')
const { randomUUID } = require('node:crypto')

const state = { token: randomUUID(), fetches: 0, rejected: 0, delayMs: 0, sapClient: null, unauthorized: 0 }
const WRITES = new Set(['POST', 'PUT', 'PATCH', 'MERGE', 'DELETE'])
const USER = process.env.SAP_TEST_USER
const PASSWORD = process.env.SAP_TEST_PASSWORD
const CONTEXT_HEADER = /^(crossway-.*|traceparent)$/
const RECENT = 200 // requests whose context is kept: enough for a test, bounded for a long demo
const recent = []

function control(app) {
  app.get('/__test/stats', (req, res) => res.json(state))
  app.post('/__test/csrf/rotate', (req, res) => {
    state.token = randomUUID() // every token handed out so far is now stale
    res.json({ ok: true })
  })
  app.post('/__test/delay', (req, res) => {
    state.delayMs = Number(req.query.ms) || 0
    res.json({ delayMs: state.delayMs })
  })
  app.get('/__test/requests', (req, res) => res.json({ requests: recent }))
}

// Like SAP Gateway's own request log: who called (the gateway's context headers), not the payload.
function remember(req) {
  const headers = Object.fromEntries(Object.entries(req.headers).filter(([name]) => CONTEXT_HEADER.test(name)))
  recent.push({ method: req.method, path: req.path, headers })
  if (recent.length > RECENT) recent.shift()
}

// SAP Gateway reads percent-encoded key predicates (pyodata sends `Companies%28ID%3Dguid%27…%27%29`);
// the CAP OData V2 adapter does not, so decode the resource path before it sees the request.
function decodePath(req, res, next) {
  const [path, query] = req.url.split('?', 2)
  if (path.includes('%')) {
    req.url = decodeURIComponent(path) + (query === undefined ? '' : '?' + query)
    req.originalUrl = req.url
  }
  next()
}

function gateway(req, res, next) {
  // Basic authentication, like an SAP Gateway system user.
  if (USER) {
    const expected = 'Basic ' + Buffer.from(`${USER}:${PASSWORD}`).toString('base64')
    if (req.headers.authorization !== expected) {
      state.unauthorized++
      res.set('www-authenticate', 'Basic realm="SAP NetWeaver Application Server"')
      return res.status(401).send('Logon failed')
    }
  }
  if (req.query['sap-client']) state.sapClient = req.query['sap-client']
  remember(req)
  const sent = req.headers['x-csrf-token']
  if ((req.method === 'GET' || req.method === 'HEAD') && sent && sent.toLowerCase() === 'fetch') {
    state.fetches++
    res.set('x-csrf-token', state.token)
  } else if (WRITES.has(req.method) && sent !== state.token) {
    state.rejected++
    res.set('x-csrf-token', 'Required')
    return res.status(403).send('CSRF token validation failed')
  }
  if (state.delayMs > 0) return setTimeout(next, state.delayMs)
  next()
}

module.exports = (options) => {
  const app = express()
  control(app)
  // Mounted before cds.server() bootstraps, so it runs ahead of the OData V2 adapter.
  app.use('/odata/v2', gateway)
  app.use((req, res, next) => (req.url.startsWith('/odata/v2/') ? decodePath(req, res, next) : next()))
  const listen = app.listen.bind(app)
  app.listen = (port, ...rest) => listen(port, '127.0.0.1', ...rest)
  return cds.server({ ...options, app })
}
