import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate } from 'y-protocols/awareness'
import { createPresence, throttle, colorFor } from '../lib/index.js'

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Two awareness instances wired to each other, as a server would relay them. */
function pair () {
  const a = new Awareness(new Y.Doc())
  const b = new Awareness(new Y.Doc())
  const wire = (from, to) => from.on('update', ({ added, updated, removed }, origin) => {
    if (origin === 'remote') return
    applyAwarenessUpdate(to, encodeAwarenessUpdate(from, added.concat(updated, removed)), 'remote')
  })
  wire(a, b)
  wire(b, a)
  a.setLocalState({}) // announce both, as a provider does on connect
  b.setLocalState({})
  return { a, b, destroy: () => { a.destroy(); b.destroy() } }
}

test('throttle runs the first call at once and folds the rest into one trailing call', async () => {
  const calls = []
  const t = throttle((v) => calls.push(v), 40)
  t(1); t(2); t(3)
  assert.deepEqual(calls, [1])
  await sleep(60)
  assert.deepEqual(calls, [1, 3])
  t(4)
  t.flush()
  assert.deepEqual(calls, [1, 3, 4])
  t(5); t(6); t.cancel() // still inside the window of the flushed call: both dropped
  await sleep(60)
  assert.deepEqual(calls, [1, 3, 4])
})

test('peers see each other\'s user, cursor and selection; the local client is not a peer', async () => {
  const { a, b, destroy } = pair()
  const pa = createPresence(a, { throttleMs: 10 })
  const pb = createPresence(b, { throttleMs: 10 })
  pa.setUser({ name: 'Ada', color: '#e4572e' })
  pa.setCursor({ x: 10, y: 20 })
  pa.setSelection(['n1'])
  await sleep(20)
  const peers = pb.peers()
  assert.equal(peers.length, 1)
  assert.deepEqual(peers[0], { clientId: a.clientID, user: { name: 'Ada', color: '#e4572e' }, cursor: { x: 10, y: 20 }, selection: ['n1'] })
  assert.deepEqual(pa.peers(), [{ clientId: b.clientID, user: { name: `Guest ${b.clientID % 1000}`, color: colorFor(b.clientID) }, cursor: null, selection: null }])
  assert.deepEqual(pa.local().selection, ['n1'])
  pa.destroy(); pb.destroy(); destroy()
})

test('cursor broadcasts and cursor subscribers are throttled, the last position always arrives', async () => {
  const { a, b, destroy } = pair()
  const pa = createPresence(a, { throttleMs: 30 })
  const pb = createPresence(b, { throttleMs: 30 })
  pa.setUser({ name: 'Ada', color: '#e4572e' })
  const seen = []
  pb.onCursors((cursors) => seen.push(cursors.map((c) => c.cursor.x)))
  let sent = 0
  a.on('update', () => sent++)
  for (let x = 1; x <= 50; x++) {
    pa.setCursor({ x, y: 0 })
    await sleep(2)
  }
  await sleep(80)
  assert.ok(sent < 25, `cursor updates sent: ${sent}`)
  assert.ok(seen.length < 25, `subscriber calls: ${seen.length}`)
  assert.deepEqual(seen.at(-1), [50])
  pa.setCursor(null)
  await sleep(80)
  assert.deepEqual(seen.at(-1), [])
  pa.destroy(); pb.destroy(); destroy()
})

test('subscribe reports joins and leaves', async () => {
  const { a, b, destroy } = pair()
  const pb = createPresence(b, { throttleMs: 5 })
  const counts = []
  const off = pb.subscribe((peers) => counts.push(peers.length))
  assert.deepEqual(counts, [1])
  a.setLocalState(null)
  await sleep(20)
  assert.deepEqual(counts, [1, 0])
  off()
  a.setLocalState({ user: { name: 'x', color: '#000' } })
  await sleep(20)
  assert.deepEqual(counts, [1, 0])
  pb.destroy(); destroy()
})

test('setField sets and clears any other field of the local state, which peers receive', () => {
  const { a, b, destroy } = pair()
  const pa = createPresence(a, { throttleMs: 5 })
  pa.setUser({ name: 'Ada', color: '#e4572e' })
  pa.setField('call', { room: 'r', peer: 7, audio: true, video: false, speaking: false })
  assert.deepEqual(b.getStates().get(a.clientID).call, { room: 'r', peer: 7, audio: true, video: false, speaking: false })
  assert.equal(pa.local().user.name, 'Ada')
  pa.setField('call', null)
  assert.equal(b.getStates().get(a.clientID).call, null)
  assert.equal(b.getStates().get(a.clientID).user.name, 'Ada')
  pa.destroy(); destroy()
})
