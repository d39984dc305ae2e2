// Webhooks end to end: a receiver on 127.0.0.1 verifies every delivery with the official
// `standardwebhooks` package; events arrive within seconds of a stock-client edit; failed
// deliveries are retried with the same message id until one succeeds; redirects are not
// followed; a signing secret is shown once, and a rotated one signs beside the new one for
// the grace period; retries go to the subscription's current URL with its current secret,
// and stop when the project is deleted. The receiver is on a loopback address, so the server
// runs with WEBHOOK_ALLOW_PRIVATE=true (webhook-destinations.test.mjs runs without it).

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { Webhook } from 'standardwebhooks'
import { IS_REFERENCE, createProject, startServer, waitFor } from './server.mjs'
import { connectProvider, destroyAll, roomName, waitSynced } from './helpers.mjs'

const SKIP = IS_REFERENCE && 'the reference server has no webhooks'

let server
let receiver
let project
let key

/**
 * A receiver that records every request. It answers 204, or 500 while `failures` has some
 * left for the path, or what `responders.get(path)()` returns (`{ status, headers }`).
 */
function startReceiver () {
  const requests = []
  const failures = new Map() // path -> number of 500s still to answer
  const responders = new Map() // path -> () => ({ status, headers })
  const srv = http.createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (d) => { body += d })
    req.on('end', () => {
      const left = failures.get(req.url) || 0
      let answer = { status: left > 0 ? 500 : 204, headers: {} }
      if (left > 0) failures.set(req.url, left - 1)
      else if (responders.has(req.url)) answer = responders.get(req.url)()
      requests.push({ path: req.url, headers: req.headers, body, status: answer.status, at: Date.now() })
      res.writeHead(answer.status, answer.headers)
      res.end()
    })
  })
  return new Promise((resolve) => {
    srv.listen(0, '127.0.0.1', () => {
      resolve({ url: `http://127.0.0.1:${srv.address().port}`, requests, failures, responders, close: () => srv.close() })
    })
  })
}

const hits = (path) => receiver.requests.filter((r) => r.path === path)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function call (method, path, json) {
  const res = await fetch(`${server.url}/v1/projects/${project}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: json === undefined ? undefined : JSON.stringify(json)
  })
  return { status: res.status, body: await res.json() }
}

async function subscribe (path, events) {
  const res = await call('POST', '/webhooks', { url: `${receiver.url}${path}`, events, description: path })
  assert.equal(res.status, 201, JSON.stringify(res.body))
  assert.match(res.body.secret, /^whsec_/)
  assert.equal(res.body.secret_hint, res.body.secret.slice(-4))
  return res.body
}

/** Verifies a recorded request with the standardwebhooks library; returns the payload. */
function verified (hook, request) {
  return verifiedWith(hook.secret, request)
}

/** Verifies a recorded request with `secret`; returns the payload or throws. */
function verifiedWith (secret, request) {
  return new Webhook(secret).verify(request.body, {
    'webhook-id': request.headers['webhook-id'],
    'webhook-timestamp': request.headers['webhook-timestamp'],
    'webhook-signature': request.headers['webhook-signature']
  })
}

/** The `v1,…` entries of a recorded request's signature header. */
const signatures = (request) => request.headers['webhook-signature'].split(' ')

/** Sends `hook` a webhook.test event and returns the request it makes at `path`. */
async function testDelivery (hook, path) {
  const before = hits(path).length
  assert.equal((await call('POST', `/webhooks/${hook.id}/test`)).status, 202)
  return waitFor(() => hits(path)[before], { timeout: 15_000, description: `a webhook.test delivery at ${path}` })
}

/** The subscription's delivery log, oldest first. */
async function deliveries (hook) {
  const log = await call('GET', `/webhooks/${hook.id}/deliveries`)
  assert.equal(log.status, 200, JSON.stringify(log.body))
  return log.body.deliveries.slice().reverse()
}

before(async () => {
  if (SKIP) return
  receiver = await startReceiver()
  server = await startServer({
    vars: {
      WEBHOOK_ALLOW_PRIVATE: 'true',
      WEBHOOK_RETRY_BASE_MS: '300',
      WEBHOOK_MAX_ATTEMPTS: '5',
      WEBHOOK_COALESCE_SECONDS: '1',
      WEBHOOK_SECRET_GRACE_SECONDS: '6'
    }
  })
  ;({ project, key } = await createProject(server, 'Webhooks'))
}, { timeout: 150_000 })

after(async () => {
  destroyAll()
  if (server) await server.stop()
  if (receiver) receiver.close()
})

test('document.updated arrives within seconds of a stock-client edit, signed, with who and what', { skip: SKIP, timeout: 60_000 }, async () => {
  const hook = await subscribe('/docs', ['document.*'])
  const room = roomName('wh')
  const tokenRes = await call('POST', '/tokens', { sub: 'ada', room, role: 'editor' })
  const client = connectProvider(server.wsUrl, room, { params: { token: tokenRes.body.token } })
  await waitSynced(client)
  const edited = Date.now()
  client.doc.getText('notes').insert(0, 'hello')
  client.doc.getMap('board').set('color', 'blue')
  const delivery = await waitFor(() => receiver.requests.find((r) => r.path === '/docs' && JSON.parse(r.body).type === 'document.updated'), { timeout: 15_000, description: 'document.updated delivery' })
  const latency = delivery.at - edited
  assert.ok(latency < 10_000, `arrived ${latency} ms after the edit`)
  const payload = verified(hook, delivery)
  assert.equal(payload.type, 'document.updated')
  assert.equal(payload.data.project, project)
  assert.equal(payload.data.document, room)
  assert.deepEqual(payload.data.authors, ['user:ada'])
  const notes = payload.data.changes.find((c) => c.root === 'notes')
  assert.deepEqual(notes, { root: 'notes', kind: 'text', range: { index: 0, deleted: 0, inserted: 5 } })
  assert.deepEqual(payload.data.changes.find((c) => c.root === 'board').keys, ['color'])
  assert.ok(payload.data.state_vector.length > 0)
  // The connect registered the document: document.created came too.
  assert.ok(receiver.requests.some((r) => r.path === '/docs' && JSON.parse(r.body).type === 'document.created'))
  // A tampered body fails verification with the same library.
  assert.throws(() => verified(hook, { ...delivery, body: delivery.body.replace('hello', 'HELLO').replace('ada', 'eve') }))
  assert.throws(() => new Webhook('whsec_' + Buffer.from('another secret!!').toString('base64')).verify(delivery.body, {
    'webhook-id': delivery.headers['webhook-id'],
    'webhook-timestamp': delivery.headers['webhook-timestamp'],
    'webhook-signature': delivery.headers['webhook-signature']
  }))
})

test('a receiver that fails three times gets the event once more, with the same id', { skip: SKIP, timeout: 60_000 }, async () => {
  const hook = await subscribe('/flaky', ['member.*'])
  receiver.failures.set('/flaky', 3)
  assert.equal((await call('PUT', '/members/bea', { role: 'viewer' })).status, 201)
  await waitFor(() => receiver.requests.filter((r) => r.path === '/flaky' && r.status === 204).length === 1, { timeout: 30_000, description: 'a successful delivery after three failures' })
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const attempts = receiver.requests.filter((r) => r.path === '/flaky')
  assert.deepEqual(attempts.map((r) => r.status), [500, 500, 500, 204], 'three failures, then exactly one success')
  assert.equal(new Set(attempts.map((r) => r.headers['webhook-id'])).size, 1, 'one message id across retries')
  const gaps = attempts.slice(1).map((r, i) => r.at - attempts[i].at)
  assert.ok(gaps[2] > gaps[0], `backoff grows: ${gaps.join(', ')} ms`)
  const payload = verified(hook, attempts[3])
  assert.equal(payload.type, 'member.added')
  assert.equal(payload.data.sub, 'bea')
  const log = await call('GET', `/webhooks/${hook.id}/deliveries`)
  assert.deepEqual(log.body.deliveries.map((d) => d.outcome).reverse(), ['retrying', 'retrying', 'retrying', 'delivered'])
  assert.deepEqual(log.body.deliveries.map((d) => d.attempt).reverse(), [1, 2, 3, 4])
})

test('subscriptions: filters, test events, disable and re-enable, validation', { skip: SKIP, timeout: 60_000 }, async () => {
  const hook = await subscribe('/keys-only', ['key.created'])
  assert.equal((await call('POST', `/webhooks/${hook.id}/test`)).status, 202)
  await waitFor(() => receiver.requests.some((r) => r.path === '/keys-only' && JSON.parse(r.body).type === 'webhook.test'), { description: 'test event' })
  await call('PUT', '/members/cy', { role: 'editor' })
  await call('POST', '/keys', { name: 'bot', role: 'viewer' })
  await waitFor(() => receiver.requests.some((r) => r.path === '/keys-only' && JSON.parse(r.body).type === 'key.created'), { description: 'key.created' })
  assert.ok(!receiver.requests.some((r) => r.path === '/keys-only' && JSON.parse(r.body).type.startsWith('member.')), 'filtered out')
  const off = await call('PATCH', `/webhooks/${hook.id}`, { enabled: false })
  assert.equal(off.body.enabled, false)
  const listed = await call('GET', '/webhooks')
  assert.ok(listed.body.webhooks.some((w) => w.id === hook.id && w.enabled === false))
  for (const bad of [{ url: 'ftp://x', events: ['*'] }, { url: `${receiver.url}/x`, events: ['nope.event'] }, { url: `${receiver.url}/x`, events: [] }, { url: `${receiver.url}/x` }]) {
    const res = await call('POST', '/webhooks', bad)
    assert.equal(res.status, 400, JSON.stringify(bad))
  }
  assert.equal((await call('DELETE', `/webhooks/${hook.id}`)).status, 200)
  assert.equal((await call('GET', `/webhooks/${hook.id}`)).status, 404)
})

test('a subscription that keeps failing is disabled', { skip: SKIP, timeout: 90_000 }, async () => {
  const strict = await startServer({ vars: { WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_RETRY_BASE_MS: '100', WEBHOOK_DISABLE_AFTER: '3', WEBHOOK_MAX_ATTEMPTS: '2' } })
  try {
    const made = await createProject(strict, 'Failing')
    const api = async (method, path, json) => (await fetch(`${strict.url}/v1/projects/${made.project}${path}`, {
      method,
      headers: { authorization: `Bearer ${made.key}`, 'content-type': 'application/json' },
      body: json === undefined ? undefined : JSON.stringify(json)
    })).json()
    receiver.failures.set('/down', 1000)
    const hook = await api('POST', '/webhooks', { url: `${receiver.url}/down`, events: ['member.*'] })
    await api('PUT', '/members/a', { role: 'viewer' })
    await api('PUT', '/members/b', { role: 'viewer' })
    const disabled = await waitFor(async () => {
      const h = await api('GET', `/webhooks/${hook.id}`)
      return h.enabled === false && h
    }, { timeout: 30_000, description: 'the subscription to be disabled' })
    assert.match(disabled.disabled_reason, /3 failed attempts/)
    const log = await api('GET', `/webhooks/${hook.id}/deliveries`)
    assert.ok(log.deliveries.some((d) => d.outcome === 'gave_up'))
    const again = await api('PATCH', `/webhooks/${hook.id}`, { enabled: true })
    assert.equal(again.enabled, true)
    assert.equal(again.consecutive_failures, 0)
  } finally {
    await strict.stop()
  }
})

test('history events: version.created, branch.created and branch.merged, signed', { skip: SKIP, timeout: 60_000 }, async () => {
  const hook = await subscribe('/history', ['version.*', 'branch.*'])
  const parent = roomName('wh-parent')
  const branch = roomName('wh-branch')
  const edit = (room, text) => call('POST', `/documents/${room}/edits`, { ops: [{ op: 'text.insert', path: ['t'], index: 0, text }] })
  assert.equal((await edit(parent, 'base')).status, 200)
  const named = await call('POST', `/documents/${parent}/versions`, { name: 'milestone' })
  assert.equal(named.status, 201, JSON.stringify(named.body))
  assert.equal((await call('POST', `/documents/${parent}/branches`, { name: branch })).status, 201)
  assert.equal((await edit(branch, 'branch: ')).status, 200)
  const merged = await call('POST', `/documents/${branch}/merge`)
  assert.equal(merged.status, 200, JSON.stringify(merged.body))
  const events = () => receiver.requests.filter((r) => r.path === '/history').map((r) => verified(hook, r))
  await waitFor(() => events().some((e) => e.type === 'branch.merged'), { timeout: 15_000, description: 'branch.merged delivery' })
  const byType = (type) => events().filter((e) => e.type === type)
  const milestone = byType('version.created').find((e) => e.data.version.name === 'milestone')
  assert.ok(milestone, JSON.stringify(events()))
  assert.equal(milestone.data.document, parent)
  assert.equal(milestone.data.version.kind, 'named')
  assert.equal(byType('branch.created')[0].data.branch.name, branch)
  const merge = byType('branch.merged')[0].data
  assert.equal(merge.parent, parent)
  assert.equal(merge.branch, branch)
  assert.equal(merge.version.kind, 'merge')
  // The branch was written through the API with the project's key: its id is the author.
  assert.equal(merge.authors.length, 1)
  assert.match(merge.authors[0], /^key_[0-9a-f]{16}$/)
  // Only subscribed families arrive at this URL.
  assert.ok(events().every((e) => e.type.startsWith('version.') || e.type.startsWith('branch.')))
})

test('a redirect is not followed: one attempt per retry at the subscribed URL, none at the target', { skip: SKIP, timeout: 60_000 }, async () => {
  const statuses = [301, 302, 303, 307, 308]
  let next = 0
  receiver.responders.set('/moved', () => ({ status: statuses[next++ % statuses.length], headers: { location: `${receiver.url}/moved-to` } }))
  const hook = await subscribe('/moved', ['webhook.test'])
  assert.equal((await call('POST', `/webhooks/${hook.id}/test`)).status, 202)
  const log = await waitFor(async () => {
    const rows = await deliveries(hook)
    return rows.some((d) => d.outcome === 'gave_up') && rows
  }, { timeout: 30_000, description: 'the redirected message to be given up' })
  await sleep(500)
  assert.deepEqual(log.map((d) => d.attempt), [1, 2, 3, 4, 5])
  assert.deepEqual(log.map((d) => d.status), statuses, 'each attempt logged with its 3xx status')
  assert.deepEqual(log.map((d) => d.outcome), ['retrying', 'retrying', 'retrying', 'retrying', 'gave_up'])
  for (const d of log) assert.match(d.error, /redirect to http:\/\/127\.0\.0\.1:\d+\/moved-to not followed/)
  assert.equal(hits('/moved').length, 5, 'exactly one request per attempt')
  assert.equal(new Set(hits('/moved').map((r) => r.headers['webhook-id'])).size, 1)
  assert.equal(hits('/moved-to').length, 0, 'the redirect target is never reached')
})

test('the signing secret is shown once: reads, lists, changes and the audit log give its hint only', { skip: SKIP, timeout: 60_000 }, async () => {
  const hook = await subscribe('/quiet', ['key.revoked'])
  const secrets = [hook.secret]
  const noSecretIn = (what, res) => {
    assert.equal(res.status, 200, `${what}: ${JSON.stringify(res.body)}`)
    const text = JSON.stringify(res.body)
    for (const secret of secrets) assert.ok(!text.includes(secret.slice('whsec_'.length)), `${what} shows a secret`)
    return res.body
  }
  const read = noSecretIn('GET', await call('GET', `/webhooks/${hook.id}`))
  assert.equal(read.secret, undefined)
  assert.equal(read.secret_hint, hook.secret.slice(-4))
  assert.equal(read.previous_secret_expires_at, null)
  const list = noSecretIn('list', await call('GET', '/webhooks'))
  assert.ok(list.webhooks.some((w) => w.id === hook.id))
  assert.ok(list.webhooks.every((w) => !('secret' in w) && /^.{4}$/.test(w.secret_hint)))
  const patched = noSecretIn('PATCH', await call('PATCH', `/webhooks/${hook.id}`, { description: 'renamed', url: `${receiver.url}/quiet2` }))
  assert.equal(patched.secret, undefined)
  assert.equal(patched.description, 'renamed')

  const rotated = await call('POST', `/webhooks/${hook.id}/rotate-secret`)
  assert.equal(rotated.status, 200, JSON.stringify(rotated.body))
  assert.match(rotated.body.secret, /^whsec_/)
  assert.notEqual(rotated.body.secret, hook.secret)
  assert.equal(rotated.body.secret_hint, rotated.body.secret.slice(-4))
  assert.ok(rotated.body.previous_secret_expires_at > Date.now())
  assert.ok(rotated.body.secret_rotated_at <= Date.now())
  secrets.push(rotated.body.secret)
  const after = noSecretIn('GET after rotation', await call('GET', `/webhooks/${hook.id}`))
  assert.equal(after.secret, undefined)
  assert.equal(after.secret_hint, rotated.body.secret.slice(-4))
  assert.equal(after.previous_secret_expires_at, rotated.body.previous_secret_expires_at)
  noSecretIn('list after rotation', await call('GET', '/webhooks'))
  const audit = noSecretIn('audit', await call('GET', '/audit'))
  const entry = audit.events.find((e) => e.action === 'webhook.secret_rotated' && e.target === hook.id)
  assert.ok(entry, 'the rotation is audited')
  assert.equal(JSON.parse(entry.detail).previous_secret_expires_at, rotated.body.previous_secret_expires_at)
  noSecretIn('deliveries', await call('GET', `/webhooks/${hook.id}/deliveries`))
})

test('rotations at the same moment: each one answered 200 was stored and audited, the others answer 409', { skip: SKIP, timeout: 60_000 }, async () => {
  const hook = await subscribe('/race', ['key.revoked'])
  const answers = await Promise.all([1, 2, 3, 4].map(() => call('POST', `/webhooks/${hook.id}/rotate-secret`)))
  assert.ok(answers.every((a) => a.status === 200 || (a.status === 409 && a.body.error === 'conflict')), JSON.stringify(answers.map((a) => a.status)))
  const won = answers.filter((a) => a.status === 200).map((a) => a.body.secret)
  assert.ok(won.length >= 1)
  assert.equal(new Set(won).size, won.length)
  const now = (await call('GET', `/webhooks/${hook.id}`)).body
  assert.ok(won.some((secret) => secret.slice(-4) === now.secret_hint), 'the stored secret is one that was handed out')
  const audit = (await call('GET', '/audit')).body.events
  assert.equal(audit.filter((e) => e.action === 'webhook.secret_rotated' && e.target === hook.id).length, won.length)
})

test('a rotated secret: deliveries in the grace period verify with the old and the new one, then with the new one only', { skip: SKIP, timeout: 60_000 }, async () => {
  const hook = await subscribe('/rotate', ['webhook.test'])
  const before = await testDelivery(hook, '/rotate')
  assert.equal(signatures(before).length, 1)
  assert.equal(verifiedWith(hook.secret, before).type, 'webhook.test')

  const rotated = (await call('POST', `/webhooks/${hook.id}/rotate-secret`)).body
  const during = await testDelivery(hook, '/rotate')
  assert.ok(during.at < rotated.previous_secret_expires_at, 'delivered within the grace period')
  assert.equal(signatures(during).length, 2, during.headers['webhook-signature'])
  assert.ok(signatures(during).every((s) => s.startsWith('v1,')))
  assert.equal(verifiedWith(hook.secret, during).type, 'webhook.test', 'the old secret verifies')
  assert.equal(verifiedWith(rotated.secret, during).type, 'webhook.test', 'the new secret verifies')
  assert.throws(() => verifiedWith('whsec_' + Buffer.from('not the secret, not at all').toString('base64'), during))

  await waitFor(() => Date.now() > rotated.previous_secret_expires_at + 100, { timeout: 20_000, description: 'the grace period to end' })
  assert.equal((await call('GET', `/webhooks/${hook.id}`)).body.previous_secret_expires_at, null)
  const later = await testDelivery(hook, '/rotate')
  assert.equal(signatures(later).length, 1, later.headers['webhook-signature'])
  assert.equal(verifiedWith(rotated.secret, later).type, 'webhook.test')
  assert.throws(() => verifiedWith(hook.secret, later), 'the old secret no longer verifies')
})

test('a retry goes to the URL the subscription has now, signed with the secrets it has now', { skip: SKIP, timeout: 60_000 }, async () => {
  receiver.failures.set('/first', 1000)
  const hook = await subscribe('/first', ['webhook.test'])
  assert.equal((await call('POST', `/webhooks/${hook.id}/test`)).status, 202)
  const failed = await waitFor(() => hits('/first')[0], { timeout: 15_000, description: 'the first, failing attempt' })
  // Two rotations: the secret the message was queued with no longer signs at all.
  const second = (await call('POST', `/webhooks/${hook.id}/rotate-secret`)).body.secret
  const third = (await call('POST', `/webhooks/${hook.id}/rotate-secret`)).body.secret
  const moved = await call('PATCH', `/webhooks/${hook.id}`, { url: `${receiver.url}/second` })
  assert.equal(moved.status, 200, JSON.stringify(moved.body))
  const movedAt = Date.now()
  const delivered = await waitFor(() => hits('/second')[0], { timeout: 15_000, description: 'the retry at the new URL' })
  assert.equal(delivered.headers['webhook-id'], failed.headers['webhook-id'], 'the same message')
  assert.equal(verifiedWith(third, delivered).type, 'webhook.test', 'signed with the current secret')
  assert.equal(verifiedWith(second, delivered).type, 'webhook.test', 'and the one it replaced, in its grace period')
  assert.throws(() => verifiedWith(hook.secret, delivered), 'not with the secret it was queued under')
  assert.equal(signatures(delivered).length, 2)
  await sleep(1000)
  assert.ok(hits('/first').every((r) => r.at <= movedAt + 150), 'nothing more at the old URL')
  assert.equal(hits('/second').length, 1)
  const log = await deliveries(hook)
  assert.equal(log.at(-1).outcome, 'delivered')
  assert.ok(log.slice(0, -1).every((d) => d.outcome === 'retrying' && d.status === 500))
})

test('a deleted project\'s queued retries stop', { skip: SKIP, timeout: 60_000 }, async () => {
  const doomed = await createProject(server, 'Deleted with retries queued')
  const api = async (method, path, json) => fetch(`${server.url}/v1/projects/${doomed.project}${path}`, {
    method,
    headers: { authorization: `Bearer ${doomed.key}`, 'content-type': 'application/json' },
    body: json === undefined ? undefined : JSON.stringify(json)
  })
  receiver.failures.set('/doomed', 1000)
  const hook = await (await api('POST', '/webhooks', { url: `${receiver.url}/doomed`, events: ['webhook.test'] })).json()
  assert.equal((await api('POST', `/webhooks/${hook.id}/test`)).status, 202)
  await waitFor(() => hits('/doomed').length >= 1, { timeout: 15_000, description: 'the first, failing attempt' })
  assert.equal((await api('DELETE', '')).status, 200)
  const deletedAt = Date.now()
  // Retries were due 0.3, 0.9, 2.1 and 4.5 s after the first attempt.
  await sleep(6000)
  const late = hits('/doomed').filter((r) => r.at > deletedAt + 150)
  assert.deepEqual(late.map((r) => r.at - deletedAt), [], 'no attempt after the project was deleted')
  assert.ok(hits('/doomed').length < 5)
})
