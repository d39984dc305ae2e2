// Durability: documents survive a graceful restart, and no update that was
// delivered to another client is lost when the server is killed with SIGKILL.

import { after, afterEach, beforeEach, test } from 'node:test'
import assert from 'node:assert/strict'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import { IS_REFERENCE, createProject, sleep, startServer, waitFor } from './server.mjs'
import { Y, connectProvider, destroyAll, destroyProvider, openRaw, roomName, sameContent, snapshot, waitSynced } from './helpers.mjs'

const SKIP = IS_REFERENCE ? 'reference server is in-memory' : false

/** Servers started for the current test; whatever is still running is stopped after it. */
let servers = []
/** The server each test starts with (fresh persistence directory). */
let server

beforeEach(async () => {
  if (SKIP) return
  server = await start()
}, { timeout: 150_000 })

afterEach(async () => {
  destroyAll()
  for (const s of servers) await s.stop()
  servers = []
})

after(() => destroyAll())

async function start (opts) {
  const s = await startServer(opts)
  servers.push(s)
  return s
}

async function restart (s) {
  const s2 = await s.restart()
  servers.push(s2)
  return s2
}

test('documents survive a graceful stop and restart', { timeout: 120_000, skip: SKIP }, async (t) => {
  const rooms = [roomName('durable-a'), roomName('durable-b')]
  const expected = {}

  for (const [i, room] of rooms.entries()) {
    const a = connectProvider(server.wsUrl, room)
    const b = connectProvider(server.wsUrl, room)
    await Promise.all([waitSynced(a), waitSynced(b)])
    const text = a.doc.getText('text')
    // Many small transactions, as an editor produces them.
    for (let k = 0; k < 200; k++) text.insert(text.length, String.fromCharCode(97 + ((k + i) % 26)))
    text.delete(0, 10)
    text.insert(0, `room ${i}: `)
    const map = a.doc.getMap('map')
    a.doc.transact(() => {
      const meta = new Y.Map()
      meta.set('owner', `user-${i}`)
      meta.set('tags', ['x', 'y'])
      map.set('meta', meta)
      const list = new Y.Array()
      list.push([1, { two: 2 }, [3]])
      map.set('list', list)
    })
    b.doc.getMap('map').set('fromB', i)
    // Acknowledged: each client has the other's edits, so the server has both.
    await waitFor(() => sameContent(a.doc, b.doc) && b.doc.getText('text').length === 200 - 10 + `room ${i}: `.length &&
      a.doc.getMap('map').get('fromB') === i, { description: `room ${i} content reaches both clients` })
    expected[room] = snapshot(a.doc)
    destroyProvider(a)
    destroyProvider(b)
  }

  await server.stop()
  const server2 = await restart(server)
  for (const room of rooms) {
    const c = connectProvider(server2.wsUrl, room)
    await waitSynced(c)
    await waitFor(() => snapshot(c.doc).text.length === expected[room].text.length, { timeout: 5_000 }).catch(() => {})
    assert.deepEqual(snapshot(c.doc), expected[room], `room ${room} after restart`)
  }
  t.diagnostic(`restored ${rooms.length} rooms after a graceful restart`)
})

/** The sync messages among raw frames, as [kind, payload] (0 SyncStep1, 1 SyncStep2, 2 update). */
function syncMessages (frames) {
  const out = []
  for (const frame of frames) {
    if (typeof frame === 'string') continue
    const d = decoding.createDecoder(frame)
    if (decoding.readVarUint(d) !== 0) continue
    out.push([decoding.readVarUint(d), decoding.readVarUint8Array(d)])
  }
  return out
}

test('a room that went idle loads from its checkpoint: a new client gets it at once, then the room asks for what it lacks', { timeout: 150_000, skip: SKIP }, async (t) => {
  const room = roomName('idle')
  const a = connectProvider(server.wsUrl, room)
  const b = connectProvider(server.wsUrl, room)
  await Promise.all([waitSynced(a), waitSynced(b)])
  const text = a.doc.getText('text')
  for (let k = 0; k < 100; k++) text.insert(text.length, String.fromCharCode(97 + (k % 26)))
  a.doc.getMap('map').set('k', 'v')
  await waitFor(() => sameContent(a.doc, b.doc), { description: 'both clients have the edits' })
  // B goes away keeping its document and edits it offline; then A, the last one, leaves.
  const offline = b.doc
  destroyProvider(b)
  offline.getText('text').insert(0, 'offline ')
  const expected = snapshot(a.doc)
  const sv = Y.encodeStateVector(a.doc)
  destroyProvider(a)

  // The last leave checkpoints the room (from its alarm): after a restart it loads from that
  // checkpoint alone, so a new client's SyncStep1 is answered before the room's own SyncStep1
  // (which needs the document decoded) is sent. A restart that came before the alarm shows the
  // SyncStep1 first; this connection's leave checkpoints it again, so the next restart sees it.
  let s = server
  let messages
  for (let attempt = 1; ; attempt++) {
    s = await restart(s)
    const raw = openRaw(`${s.wsUrl}/${room}`)
    await raw.e2e.opened
    const e = encoding.createEncoder()
    encoding.writeVarUint(e, 0)
    syncProtocol.writeSyncStep1(e, new Y.Doc())
    raw.send(encoding.toUint8Array(e))
    await waitFor(() => syncMessages(raw.e2e.messages).length >= 2, { description: 'SyncStep1 and SyncStep2 from the room' })
    messages = syncMessages(raw.e2e.messages)
    if (messages[0][0] === 1 || attempt === 3) {
      t.diagnostic(`served from the checkpoint after ${attempt} restart(s)`)
      break
    }
    raw.close()
    await raw.e2e.closed
    await sleep(500)
  }
  assert.deepEqual(messages.map(([kind]) => kind), [1, 0], 'the stored bytes first, then the room asks for what it lacks')
  const fresh = new Y.Doc()
  Y.applyUpdate(fresh, messages[0][1])
  assert.deepEqual(snapshot(fresh), expected, 'the new client has the whole document')
  assert.deepEqual(Y.decodeStateVector(messages[1][1]), Y.decodeStateVector(sv), "the room's SyncStep1 carries the document's state vector")

  // The returning client's offline edit reaches the room, which stores it.
  const back = connectProvider(s.wsUrl, room, { doc: offline })
  await waitSynced(back)
  const c = connectProvider(s.wsUrl, room)
  await waitSynced(c)
  await waitFor(() => c.doc.getText('text').toString() === `offline ${expected.text}`, { description: 'the offline edit reaches a new client' })
  destroyProvider(back)
  destroyProvider(c)
  const s2 = await restart(s)
  const d = connectProvider(s2.wsUrl, room)
  await waitSynced(d)
  await waitFor(() => d.doc.getText('text').toString() === `offline ${expected.text}`, { description: 'the offline edit survives a restart' })
  assert.equal(d.doc.getMap('map').get('k'), 'v')
})

test('kill -9 loses no update that was delivered to another client', { timeout: 120_000, skip: SKIP }, async (t) => {
  const room = roomName('crash')

  const a = connectProvider(server.wsUrl, room)
  const b = connectProvider(server.wsUrl, room)
  await Promise.all([waitSynced(a), waitSynced(b)])
  const arrA = a.doc.getArray('nums')
  const arrB = b.doc.getArray('nums')

  // Everything B receives was delivered by the server, i.e. acknowledged.
  const seenByB = []
  arrB.observe((event) => {
    for (const d of event.changes.delta) if (d.insert) seenByB.push(...d.insert)
  })

  let next = 0
  const writer = setInterval(() => {
    arrA.push([next++]) // one transaction per value
  }, 2)

  let snapshotB
  try {
    await waitFor(() => seenByB.length >= 250, { timeout: 30_000, interval: 5, description: 'B receives 250 values' })
    // Crash while A is still writing.
    const killed = server.kill9()
    // Immediately take both clients away so nothing can be re-sent to the
    // restarted server: what survives must come from the server's own storage.
    clearInterval(writer)
    destroyProvider(a)
    destroyProvider(b)
    snapshotB = seenByB.slice()
    await killed
  } finally {
    clearInterval(writer)
  }
  const written = next
  t.diagnostic(`A wrote ${written} values, B had received ${snapshotB.length} when the server was killed`)
  assert.ok(written >= snapshotB.length, 'sanity: B cannot have seen more than A wrote')

  await sleep(200)
  const server2 = await restart(server)
  const c = connectProvider(server2.wsUrl, room)
  await waitSynced(c)
  const arrC = c.doc.getArray('nums')
  const maxB = Math.max(...snapshotB)
  await waitFor(() => arrC.length > maxB, { timeout: 5_000 }).catch(() => {})
  const valuesC = arrC.toArray()
  t.diagnostic(`after restart C has ${valuesC.length} values (B had seen ${snapshotB.length}, A wrote ${written})`)

  const inC = new Set(valuesC)
  const missing = snapshotB.filter((v) => !inC.has(v))
  assert.deepEqual(missing.slice(0, 20), [], `${missing.length} acknowledged values lost after kill -9 (first ones shown)`)
  // A single writer's pushes chain on each other, so the survivors are a prefix 0..n-1.
  assert.deepEqual(valuesC, Array.from({ length: valuesC.length }, (_, i) => i))
  assert.ok(valuesC.length <= written)
})

test('relaxed durability: changes are written within the flush window, many per commit, and survive kill -9 after it', { timeout: 120_000, skip: SKIP }, async (t) => {
  // This test's own server, in relaxed mode (the default server above stays strict).
  const relaxed = await start({ vars: { DURABILITY: 'relaxed', RELAXED_FLUSH_MS: '20' } })
  const room = roomName('relaxed')
  const a = connectProvider(relaxed.wsUrl, room)
  const b = connectProvider(relaxed.wsUrl, room)
  await Promise.all([waitSynced(a), waitSynced(b)])
  const text = a.doc.getText('t')
  for (let k = 0; k < 300; k++) text.insert(text.length, String.fromCharCode(97 + (k % 26)))
  await waitFor(() => b.doc.getText('t').length === 300, { description: 'B has every change' })
  const expected = text.toString()
  // Well past the flush window, the changes are on disk: a kill -9 loses nothing.
  await sleep(500)
  destroyProvider(a)
  destroyProvider(b)
  await relaxed.kill9()
  await sleep(200)
  const again = await restart(relaxed)
  const c = connectProvider(again.wsUrl, room)
  await waitSynced(c)
  assert.equal(c.doc.getText('t').toString(), expected)
  t.diagnostic('300 changes written in the background survived kill -9')
})

test('an HTTP write is stored before it is answered, even when background writes wait', { timeout: 120_000, skip: SKIP }, async (t) => {
  // Relaxed durability with the background flush a minute away: a WebSocket change may wait
  // that long, but a write through the HTTP API answers only once it is stored. Answered, then
  // kill -9 at once: the change must be there after the restart.
  const relaxed = await start({ vars: { DURABILITY: 'relaxed', RELAXED_FLUSH_MS: '60000' } })
  const { project, key } = await createProject(relaxed, 'Answered writes')
  const api = (s, method, path, body) => fetch(`${s.url}/v1/projects/${project}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': body instanceof Uint8Array ? 'application/octet-stream' : 'application/json' },
    body: body instanceof Uint8Array ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000)
  })
  const room = roomName('answered')
  const doc = new Y.Doc()
  doc.getText('t').insert(0, 'stored before answered')
  const res = await api(relaxed, 'POST', `/documents/${room}/update`, Y.encodeStateAsUpdate(doc))
  assert.equal(res.status, 200, await res.text())
  const edit = await api(relaxed, 'POST', `/documents/${room}/edits`, { ops: [{ op: 'text.insert', path: ['t'], index: 0, text: '> ' }] })
  assert.equal(edit.status, 200, await edit.text())
  await relaxed.kill9()
  await sleep(200)
  const again = await restart(relaxed)
  const read = await api(again, 'GET', `/documents/${room}`)
  assert.equal(read.status, 200)
  assert.deepEqual((await read.json()).content, { t: '> stored before answered' })
  t.diagnostic('two answered HTTP writes survived kill -9 with the background flush a minute away')
})
