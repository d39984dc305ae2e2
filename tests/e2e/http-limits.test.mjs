// Bounded input over HTTP: bodies refused by size before they are read, rate limits on writes
// and token minting (429 with Retry-After), paginated lists, and a health check that costs an
// anonymous caller little and tells them little.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { IS_REFERENCE, createProject, startServer } from './server.mjs'
import { Y, destroyAll, openRaw, roomName, tryUpgrade } from './helpers.mjs'

const SKIP = IS_REFERENCE && 'the reference server has no API'
const MAX_FRAME_BYTES = 65536

let server
let project
let key

async function call (method, path, { body, raw, headers = {}, auth = key } = {}) {
  const h = { authorization: `Bearer ${auth}`, ...headers }
  if (body !== undefined) h['content-type'] = 'application/json'
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: h,
    body: raw ?? (body !== undefined ? JSON.stringify(body) : undefined),
    signal: AbortSignal.timeout(20_000)
  })
  const text = await res.text()
  let json
  try { json = JSON.parse(text) } catch { json = text }
  return { status: res.status, json, headers: res.headers }
}

before(async () => {
  if (SKIP) return
  server = await startServer({ vars: { MAX_FRAME_BYTES: String(MAX_FRAME_BYTES), MAX_CONNECTIONS_PER_USER: '2' } })
  ;({ project, key } = await createProject(server, 'HTTP limits'))
}, { timeout: 150_000 })

after(async () => {
  destroyAll()
  if (server) await server.stop()
})

test('bodies over their limit are refused with 413 before anything changes', { skip: SKIP }, async () => {
  const room = roomName('big')
  const p = `/v1/projects/${project}/documents/${room}`
  const big = await call('POST', `${p}/update`, { raw: new Uint8Array(MAX_FRAME_BYTES + 1), headers: { 'content-type': 'application/octet-stream' } })
  assert.equal(big.status, 413, JSON.stringify(big.json))
  assert.equal(big.json.error, 'body-too-large')
  const json = await call('POST', `${p}/edits`, { raw: JSON.stringify({ ops: [{ op: 'text.insert', path: ['t'], index: 0, text: 'x'.repeat(70_000) }] }), headers: { 'content-type': 'application/json' } })
  assert.equal(json.status, 413)
  const lying = await call('POST', `/v1/projects/${project}/documents`, { raw: '{"name":"x"}', headers: { 'content-type': 'application/json', 'content-length': 'abc' } }).catch((e) => ({ status: 'refused by the client', e }))
  assert.notEqual(lying.status, 201)
  // Nothing was registered by the refused writes.
  const docs = (await call('GET', `/v1/projects/${project}/documents`)).json.documents
  assert.ok(!docs.some((d) => d.name === room), JSON.stringify(docs))
})

test('token minting is rate limited per key with 429 and Retry-After', { skip: SKIP, timeout: 120_000 }, async () => {
  const room = roomName('mint')
  let limited = null
  // The limit counts per fixed minute: 601 calls within two minutes put 301 in one of them.
  for (let i = 0; i < 620 && !limited; i++) {
    const res = await call('POST', `/v1/projects/${project}/tokens`, { body: { sub: `u${i}`, room } })
    if (res.status === 429) limited = res
    else assert.equal(res.status, 201, JSON.stringify(res.json))
  }
  assert.ok(limited, 'a burst of mints over the limit is refused')
  assert.equal(limited.json.error, 'rate-limited')
  assert.equal(limited.headers.get('retry-after'), '60')
  // Reads are not counted.
  assert.equal((await call('GET', `/v1/projects/${project}`)).status, 200)
})

test('lists are paginated with an opaque cursor that resumes exactly where a page ended', { skip: SKIP }, async () => {
  const { project: p, key: k } = await createProject(server, 'Pages')
  const names = []
  for (let i = 0; i < 7; i++) {
    const name = `page-${String(i).padStart(2, '0')}`
    names.push(name)
    assert.equal((await call('POST', `/v1/projects/${p}/documents`, { auth: k, body: { name } })).status, 201)
  }
  const seen = []
  let cursor = null
  for (let pages = 0; pages < 10; pages++) {
    const q = cursor ? `?limit=3&cursor=${encodeURIComponent(cursor)}` : '?limit=3'
    const page = await call('GET', `/v1/projects/${p}/documents${q}`, { auth: k })
    assert.equal(page.status, 200, JSON.stringify(page.json))
    assert.ok(page.json.documents.length <= 3)
    seen.push(...page.json.documents.map((d) => d.name))
    cursor = page.json.next_cursor
    if (!cursor) break
  }
  assert.deepEqual(seen, names)
  for (const bad of ['limit=0', 'limit=100000', 'cursor=forged', `cursor=${Buffer.from('[1,2]').toString('base64url')}`]) {
    assert.equal((await call('GET', `/v1/projects/${p}/documents?${bad}`, { auth: k })).status, 400, bad)
  }
  // Every list pages the same way.
  for (const list of ['members', 'keys', 'signing-keys', 'webhooks', 'audit']) {
    const res = await call('GET', `/v1/projects/${p}/${list}?limit=1`, { auth: k })
    assert.equal(res.status, 200, `${list}: ${JSON.stringify(res.json)}`)
    assert.ok('next_cursor' in res.json, list)
  }
})

test('health: anonymous callers get no error text; the admin gets the R2 round trip', { skip: SKIP }, async () => {
  const anon = await fetch(`${server.url}/health`)
  const body = await anon.json()
  assert.equal(anon.status, 200, JSON.stringify(body))
  for (const part of ['durable_object', 'd1', 'r2']) assert.ok(!('error' in body[part]), part)
  const admin = await call('GET', '/health', { auth: server.adminSecret })
  assert.equal(admin.status, 200)
  assert.equal(admin.json.r2.ok, true)
})

test('one user holds at most MAX_CONNECTIONS_PER_USER connections to a room (429 beyond)', { skip: SKIP }, async () => {
  const room = roomName('cap')
  // A project of its own: the rate limit test spent this file's key's minting budget.
  const { project: p, key: k } = await createProject(server, 'Connection cap')
  const mint = async (sub) => {
    const res = await call('POST', `/v1/projects/${p}/tokens`, { auth: k, body: { sub, room } })
    assert.equal(res.status, 201, JSON.stringify(res.json))
    return res.json.token
  }
  const shared = await mint('shared-link')
  const url = `${server.wsUrl}/${room}?token=${encodeURIComponent(shared)}`
  const first = openRaw(url)
  const second = openRaw(url)
  await Promise.all([first.e2e.opened, second.e2e.opened])
  const third = await tryUpgrade(url.replace(/^ws/, 'http'), 10_000, { addToken: false })
  assert.equal(third.upgraded, false)
  assert.equal(third.status, 429)
  assert.equal(JSON.parse(third.body).error, 'too-many-connections')
  // Another user is not affected.
  const other = openRaw(`${server.wsUrl}/${room}?token=${encodeURIComponent(await mint('someone-else'))}`)
  await other.e2e.opened
  // A place frees when one closes.
  first.close()
  await first.e2e.closed
  await new Promise((resolve) => setTimeout(resolve, 500))
  const again = await tryUpgrade(url.replace(/^ws/, 'http'), 10_000, { addToken: false })
  assert.equal(again.upgraded, true)
})

test('HTTP edits write under one client id per room, not a new one per request', { skip: SKIP }, async () => {
  const room = roomName('sv')
  const { project: p, key: k } = await createProject(server, 'Server client id')
  for (const text of ['a', 'b', 'c']) {
    const res = await call('POST', `/v1/projects/${p}/documents/${room}/edits`, { auth: k, body: { ops: [{ op: 'text.insert', path: ['t'], index: 0, text }] } })
    assert.equal(res.status, 200, JSON.stringify(res.json))
  }
  const res = await fetch(`${server.url}/v1/projects/${p}/documents/${room}/update`, { headers: { authorization: `Bearer ${k}` } })
  const doc = new Y.Doc()
  Y.applyUpdate(doc, new Uint8Array(await res.arrayBuffer()))
  assert.equal(doc.getText('t').toString(), 'cba')
  assert.equal(Y.decodeStateVector(Y.encodeStateVector(doc)).size, 1, 'one client in the state vector')
})
