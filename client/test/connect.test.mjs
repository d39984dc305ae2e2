import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import { connect, roomsUrl, shouldReconnect, PrepareError } from '../lib/index.js'
import { startFakeServer } from './fake-server.mjs'

const open = new Set()
after(() => { for (const c of open) c.destroy() })

/** connect() with the `ws` package and quick reconnects; destroyed after the tests. */
function client (server, opts = {}) {
  const c = connect({ url: server.url, room: 'r1', WebSocket, maxBackoffMs: 200, ...opts })
  open.add(c)
  return c
}

async function until (fn, what, timeout = 5000) {
  const start = Date.now()
  while (!fn()) {
    if (Date.now() - start > timeout) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

test('roomsUrl accepts http(s) and ws(s) servers, with or without /rooms', () => {
  assert.equal(roomsUrl('http://127.0.0.1:8787'), 'ws://127.0.0.1:8787/rooms')
  assert.equal(roomsUrl('https://x.example/'), 'wss://x.example/rooms')
  assert.equal(roomsUrl('ws://h/rooms'), 'ws://h/rooms')
  assert.equal(roomsUrl('wss://h/base/rooms/'), 'wss://h/base/rooms')
  assert.throws(() => roomsUrl('ftp://h'))
})

test('close codes: 4401 reconnects, other 44xx stop, the rest retry', () => {
  assert.equal(shouldReconnect(4401), true)
  assert.equal(shouldReconnect(4403), false)
  assert.equal(shouldReconnect(4400), false)
  assert.equal(shouldReconnect(1006), true)
  assert.equal(shouldReconnect(4500), true)
})

test('two clients sync through the server, each connection with the token getToken gave', async () => {
  const server = await startFakeServer()
  after(() => server.stop())
  const reasons = []
  let n = 0
  const getToken = ({ reason }) => { reasons.push(reason); return { token: `t${++n}`, expiresAt: 2e9 } }
  const a = client(server, { getToken })
  const b = client(server, { getToken })
  const statuses = []
  a.on('status', (e) => statuses.push(e.status))
  await until(() => a.status === 'synced' && b.status === 'synced', 'both synced')
  a.doc.getMap('m').set('k', 'v')
  await until(() => b.doc.getMap('m').get('k') === 'v', 'b to see the edit')
  assert.deepEqual(server.requests.map((r) => r.token).sort(), ['t1', 't2'])
  assert.deepEqual(server.requests.map((r) => r.room), ['r1', 'r1'])
  assert.deepEqual(reasons, ['initial', 'initial'])
  assert.equal(a.authMode, 'token')
  assert.equal(a.tokenExpiresAt, 2e9)
  assert.ok(a.provider.url.endsWith('/rooms/r1?token=t1') || a.provider.url.endsWith('/rooms/r1?token=t2'))
  assert.deepEqual(statuses.slice(-2), ['connected', 'synced'])
})

test('a close with 4401 fetches a fresh token and reconnects', async () => {
  const server = await startFakeServer()
  after(() => server.stop())
  const reasons = []
  let n = 0
  const c = client(server, { getToken: ({ reason }) => { reasons.push(reason); return `tok${++n}` } })
  const closes = []
  c.on('status', (e) => { if (e.code !== undefined) closes.push(e.code) })
  await until(() => c.status === 'synced', 'synced')
  server.closeAll(4401, 'token expired')
  await until(() => server.requests.length === 2 && c.status === 'synced', 'reconnected')
  assert.deepEqual(reasons, ['initial', 'expired'])
  assert.deepEqual(server.requests.map((r) => r.token), ['tok1', 'tok2'])
  assert.deepEqual(closes, [4401])
})

test('another 44xx close stops reconnecting; connect() resumes', async () => {
  const server = await startFakeServer()
  after(() => server.stop())
  const c = client(server, { getToken: () => 'tok' })
  await until(() => c.status === 'synced', 'synced')
  const closed = new Promise((resolve) => c.on('status', (e) => { if (e.status === 'closed') resolve(e) }))
  server.closeAll(4403, 'access revoked')
  const e = await closed
  assert.equal(e.code, 4403)
  assert.equal(e.reason, 'access revoked')
  await new Promise((resolve) => setTimeout(resolve, 500))
  assert.equal(server.requests.length, 1, 'no reconnect after a final close')
  c.connect()
  await until(() => c.status === 'synced', 'synced again')
})

test('no token: connects without one and reports authMode none', async () => {
  const server = await startFakeServer()
  after(() => server.stop())
  const c = client(server, { getToken: () => null })
  await until(() => c.status === 'synced', 'synced')
  assert.equal(server.requests[0].token, null)
  assert.equal(c.authMode, 'none')
  const d = client(server) // no getToken at all
  await until(() => d.status === 'synced', 'synced')
  assert.equal(d.authMode, 'none')
})

test('a failing getToken is retried; a PrepareError with a 44xx code is final', async () => {
  const server = await startFakeServer()
  after(() => server.stop())
  let calls = 0
  const c = client(server, {
    getToken: () => {
      calls++
      if (calls < 3) throw new Error('token service down')
      return 'ok'
    }
  })
  const errors = []
  c.on('token-error', ({ error }) => errors.push(error.message))
  await until(() => c.status === 'synced', 'synced after retries')
  assert.deepEqual(errors, ['token service down', 'token service down'])
  assert.deepEqual(server.requests.map((r) => r.token), ['ok'])

  const d = client(server, { getToken: () => { throw new PrepareError('signed out', 4403) } })
  const closed = await new Promise((resolve) => d.on('status', (e) => { if (e.status === 'closed') resolve(e) }))
  assert.equal(closed.code, 4403)
  assert.equal(closed.reason, 'signed out')
})

test('an upgrade refused with 401 is retried with reason "rejected"', async () => {
  const server = await startFakeServer({ refuse: (token) => token === 'stale' })
  after(() => server.stop())
  const reasons = []
  const c = client(server, { getToken: ({ reason }) => { reasons.push(reason); return reasons.length === 1 ? 'stale' : 'fresh' } })
  await until(() => c.status === 'synced', 'synced')
  assert.deepEqual(reasons, ['initial', 'rejected'])
  assert.deepEqual(server.requests.map((r) => r.token), ['stale', 'fresh'])
})

test('edits made offline are counted, merged on reconnect and reported once acknowledged', async () => {
  const server = await startFakeServer()
  after(() => server.stop())
  const a = client(server)
  const b = client(server)
  a.awareness.setLocalStateField('user', { name: 'A', color: '#000' })
  await until(() => a.status === 'synced' && b.status === 'synced', 'both synced')
  const merged = []
  a.on('offline-edits-merged', (e) => merged.push(e.count))

  a.disconnect()
  assert.equal(a.status, 'closed')
  const m = a.doc.getMap('m')
  m.set('x', 1)
  m.set('y', 2)
  a.doc.transact(() => { m.set('z', 3); m.set('w', 4) })
  assert.equal(a.pendingOfflineEdits, 3)
  b.doc.getMap('m').set('fromB', true) // a concurrent edit on the other side
  a.connect()
  await until(() => merged.length === 1, 'merge acknowledged')
  assert.deepEqual(merged, [3])
  assert.equal(a.pendingOfflineEdits, 0)
  await until(() => b.doc.getMap('m').get('w') === 4 && a.doc.getMap('m').get('fromB') === true, 'convergence')
  assert.deepEqual(a.doc.getMap('m').toJSON(), b.doc.getMap('m').toJSON())
  assert.deepEqual(server.doc.getMap('m').toJSON(), a.doc.getMap('m').toJSON())
})

test('a dropped connection reconnects on its own and merges what was edited meanwhile', async () => {
  const server = await startFakeServer()
  after(() => server.stop())
  const a = client(server, { getToken: () => 'tok' })
  a.awareness.setLocalStateField('user', { name: 'A', color: '#000' })
  await until(() => a.status === 'synced', 'synced')
  const merged = new Promise((resolve) => a.on('offline-edits-merged', (e) => resolve(e.count)))
  const seen = []
  a.on('status', (e) => seen.push(e.status))
  server.dropAll()
  await until(() => a.status === 'disconnected', 'disconnected')
  a.doc.getText('t').insert(0, 'offline')
  assert.equal(await merged, 1)
  assert.equal(server.doc.getText('t').toString(), 'offline')
  assert.ok(seen.includes('disconnected') && seen.at(-1) === 'synced', seen.join(','))
})

test('permission-denied messages become events and the update does not spread', async () => {
  const server = await startFakeServer({ readOnlyTokens: new Set(['viewer']) })
  after(() => server.stop())
  const viewer = client(server, { getToken: () => 'viewer' })
  const editor = client(server, { getToken: () => 'editor' })
  await until(() => viewer.status === 'synced' && editor.status === 'synced', 'both synced')
  const denied = new Promise((resolve) => viewer.on('permission-denied', (e) => resolve(e.reason)))
  viewer.doc.getMap('m').set('hack', 1)
  assert.equal(await denied, 'read-only')
  editor.doc.getMap('m').set('ok', 1)
  await until(() => viewer.doc.getMap('m').get('ok') === 1, 'viewer sees the editor')
  assert.equal(editor.doc.getMap('m').get('hack'), undefined)
  assert.equal(server.doc.getMap('m').get('hack'), undefined)
})

test('destroy closes the socket and stops everything', async () => {
  const server = await startFakeServer()
  after(() => server.stop())
  const c = client(server)
  await until(() => c.status === 'synced', 'synced')
  c.destroy()
  assert.equal(c.status, 'closed')
  await until(() => server.connections().length === 0, 'server saw the close')
  assert.throws(() => c.connect(), /destroyed/)
})
