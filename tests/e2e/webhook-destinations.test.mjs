// Webhook destinations end to end. A server started without WEBHOOK_ALLOW_PRIVATE=true
// refuses (400) receiver URLs on loopback, private and other non-public addresses in any
// spelling, with user names, other schemes or no host, at creation and when changed; and a
// URL stored while the switch was on is not delivered to once it is off: the attempt fails
// and is logged.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { IS_REFERENCE, createProject, startServer, waitFor } from './server.mjs'

const SKIP = IS_REFERENCE && 'the reference server has no webhooks'

let receiver
let server
let project
let key
let stored

/** A receiver that answers 204 and records the paths it was sent to. */
function startReceiver () {
  const paths = []
  const srv = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      paths.push(req.url)
      res.writeHead(204)
      res.end()
    })
  })
  return new Promise((resolve) => {
    srv.listen(0, '127.0.0.1', () => {
      resolve({ url: `http://127.0.0.1:${srv.address().port}`, paths, close: () => srv.close() })
    })
  })
}

async function call (method, path, json) {
  const res = await fetch(`${server.url}/v1/projects/${project}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: json === undefined ? undefined : JSON.stringify(json)
  })
  return { status: res.status, body: await res.json() }
}

before(async () => {
  if (SKIP) return
  receiver = await startReceiver()
  // First with the development switch on: a subscription to the local receiver works.
  const vars = { WEBHOOK_RETRY_BASE_MS: '200', WEBHOOK_MAX_ATTEMPTS: '2' }
  const open = await startServer({ vars: { ...vars, WEBHOOK_ALLOW_PRIVATE: 'true' } })
  try {
    server = open
    ;({ project, key } = await createProject(server, 'Destinations'))
    const made = await call('POST', '/webhooks', { url: `${receiver.url}/stored`, events: ['webhook.test'] })
    assert.equal(made.status, 201, JSON.stringify(made.body))
    stored = made.body
    assert.equal((await call('POST', `/webhooks/${stored.id}/test`)).status, 202)
    await waitFor(() => receiver.paths.includes('/stored'), { timeout: 15_000, description: 'a delivery while private destinations are allowed' })
  } finally {
    await open.stop()
  }
  // Then the same data with the switch off (explicitly: whatever the harness's default).
  server = await startServer({ persistDir: open.persistDir, reuse: true, vars: { ...vars, WEBHOOK_ALLOW_PRIVATE: 'false' } })
}, { timeout: 150_000 })

after(async () => {
  if (server) await server.stop()
  if (receiver) receiver.close()
})

/** URLs refused without the switch, and what the problem's detail says. */
const REFUSED = [
  ['http://127.0.0.1/', /loopback/],
  ['http://2130706433/', /2130706433 \(127\.0\.0\.1\) is loopback/],
  ['http://0x7f.1/', /0x7f\.1 \(127\.0\.0\.1\) is loopback/],
  ['http://0177.0.0.1/', /loopback/],
  ['http://127.1:8787/hooks', /loopback/],
  ['http://127.0.0.1./', /loopback/],
  ['http://%31%32%37.0.0.1/', /loopback/],
  ['http://localhost/', /localhost/],
  ['http://localhost./', /localhost/],
  ['http://hooks.localhost/', /localhost/],
  ['http://[::1]/', /loopback \(::1\)/],
  ['http://[::ffff:7f00:1]/', /IPv4-mapped .* of 127\.0\.0\.1/],
  ['http://[::ffff:127.0.0.1]/', /IPv4-mapped/],
  ['http://[64:ff9b::a00:1]/', /NAT64 .* of 10\.0\.0\.1/],
  ['http://[2002:c0a8:101::1]/', /6to4 .* of 192\.168\.1\.1/],
  ['http://[fe80::1]/', /link-local/],
  ['http://[fd00::1]/', /unique local/],
  ['http://10.0.0.1/', /private/],
  ['http://172.16.0.1/', /private/],
  ['http://192.168.1.1/', /private/],
  ['http://100.64.0.1/', /carrier-grade NAT/],
  ['http://169.254.169.254/latest/meta-data/', /link-local/],
  ['http://0/', /unspecified/],
  ['http://224.0.0.1/', /multicast/],
  ['http://255.255.255.255/', /broadcast/],
  ['http://192.0.2.1/', /documentation/],
  ['http://198.18.0.1/', /benchmarking/],
  ['http://240.0.0.1/', /reserved/],
  ['http://\uff11\uff12\uff17.0.0.1/', /not ASCII/],
  ['http://user:pass@example.com/', /user name or password/],
  ['http://example.com@127.0.0.1/', /user name or password/],
  ['ftp://example.com/', /http:\/\/ or https:\/\//],
  ['http:///', /no host/],
  ['http://256.0.0.1/', /not a valid host/]
]

test('without WEBHOOK_ALLOW_PRIVATE, subscriptions to non-public or malformed URLs are refused with 400', { skip: SKIP, timeout: 60_000 }, async () => {
  for (const [url, why] of REFUSED) {
    const res = await call('POST', '/webhooks', { url, events: ['*'] })
    assert.equal(res.status, 400, `${url}: ${JSON.stringify(res.body)}`)
    assert.equal(res.body.error, 'invalid-body', url)
    assert.match(res.body.detail, why, url)
  }
  // The same rule when a subscription is changed.
  for (const [url] of REFUSED.slice(0, 3)) {
    const res = await call('PATCH', `/webhooks/${stored.id}`, { url })
    assert.equal(res.status, 400, `${url}: ${JSON.stringify(res.body)}`)
  }
  const local = await call('PATCH', `/webhooks/${stored.id}`, { url: `${receiver.url}/changed` })
  assert.equal(local.status, 400, 'the local receiver itself')
  // A public name is accepted (and never sent anything: it subscribes to an event not raised).
  const open = await call('POST', '/webhooks', { url: 'https://hooks.example.com/tandemx', events: ['key.revoked'] })
  assert.equal(open.status, 201, JSON.stringify(open.body))
  assert.equal((await call('DELETE', `/webhooks/${open.body.id}`)).status, 200)
})

test('a URL stored while private destinations were allowed is not delivered to once they are not', { skip: SKIP, timeout: 60_000 }, async () => {
  const sent = receiver.paths.length
  assert.equal((await call('POST', `/webhooks/${stored.id}/test`)).status, 202)
  const log = await waitFor(async () => {
    const res = await call('GET', `/webhooks/${stored.id}/deliveries`)
    const rows = res.body.deliveries.filter((d) => d.error)
    return rows.length >= 2 && rows
  }, { timeout: 20_000, description: 'two refused attempts in the delivery log' })
  for (const d of log) {
    assert.equal(d.status, null)
    assert.match(d.error, /^destination refused: url's host 127\.0\.0\.1 is loopback/)
  }
  assert.deepEqual(log.map((d) => d.outcome).sort(), ['gave_up', 'retrying'])
  assert.equal(receiver.paths.length, sent, 'nothing reached the receiver')
  assert.deepEqual(receiver.paths, ['/stored'])
})
