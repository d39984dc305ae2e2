// Presence: awareness states are relayed between clients, late joiners get the
// current states on connect, and a departed client disappears promptly.

import { after, afterEach, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startServer, waitFor } from './server.mjs'
import { connectProvider, destroyAll, destroyProvider, roomName, waitSynced } from './helpers.mjs'

// Awareness states time out after 30 s on their own; "promptly" must be far below that.
const PROMPT_MS = 5_000

let server

before(async () => {
  server = await startServer()
}, { timeout: 150_000 })

afterEach(() => destroyAll())

after(async () => {
  destroyAll()
  if (server) await server.stop()
})

/** Records every awareness 'change' event seen by a provider. */
function recordChanges (provider) {
  const events = []
  provider.awareness.on('change', (ev, origin) => events.push({ ...ev, local: origin === 'local' }))
  return events
}

test('awareness state, updates and removal on destroy are relayed', { timeout: 60_000 }, async (t) => {
  const room = roomName('aw')
  const a = connectProvider(server.wsUrl, room)
  const b = connectProvider(server.wsUrl, room)
  await Promise.all([waitSynced(a), waitSynced(b)])
  const idA = a.doc.clientID
  const changesB = recordChanges(b)

  a.awareness.setLocalState({ user: { name: 'Alice', color: '#ff0055' }, cursor: { anchor: 1, head: 1 } })
  await waitFor(() => b.awareness.getStates().get(idA)?.user?.name === 'Alice',
    { timeout: PROMPT_MS, description: 'B sees A\'s awareness state' })
  assert.deepEqual(b.awareness.getStates().get(idA), { user: { name: 'Alice', color: '#ff0055' }, cursor: { anchor: 1, head: 1 } })
  assert.ok(changesB.some((ev) => !ev.local && (ev.added.includes(idA) || ev.updated.includes(idA))),
    'B got an awareness "change" event for A')

  a.awareness.setLocalStateField('cursor', { anchor: 4, head: 9 })
  await waitFor(() => b.awareness.getStates().get(idA)?.cursor?.head === 9,
    { timeout: PROMPT_MS, description: 'B sees A\'s cursor update' })
  assert.deepEqual(b.awareness.getStates().get(idA).cursor, { anchor: 4, head: 9 })
  assert.equal(b.awareness.getStates().get(idA).user.color, '#ff0055')
  assert.ok(changesB.some((ev) => !ev.local && ev.updated.includes(idA)), 'B got an awareness "change" event updating A')

  const t0 = Date.now()
  destroyProvider(a)
  await waitFor(() => !b.awareness.getStates().has(idA),
    { timeout: PROMPT_MS, description: 'A\'s client id removed from B\'s awareness after A left' })
  assert.ok(changesB.some((ev) => ev.removed.includes(idA)), 'B got an awareness "change" event removing A')
  t.diagnostic(`A removed from B's awareness after ${Date.now() - t0} ms`)
  assert.ok(b.wsconnected, 'B is still connected')
})

test('client that vanishes without a goodbye is removed by the server', { timeout: 60_000 }, async (t) => {
  // provider.destroy() sends a "state = null" awareness message before closing,
  // so the previous test would pass even if the server never cleaned up.
  // Here A's TCP connection is cut without any goodbye: only the server's
  // close handling can tell B that A is gone.
  const room = roomName('aw-drop')
  const a = connectProvider(server.wsUrl, room)
  const b = connectProvider(server.wsUrl, room)
  await Promise.all([waitSynced(a), waitSynced(b)])
  const idA = a.doc.clientID
  a.awareness.setLocalState({ user: { name: 'Dropper', color: '#00aa00' }, cursor: null })
  await waitFor(() => b.awareness.getStates().get(idA)?.user?.name === 'Dropper',
    { timeout: PROMPT_MS, description: 'B sees A\'s awareness state' })

  a.shouldConnect = false // no reconnect
  const t0 = Date.now()
  a.ws.terminate() // destroys the socket: no close frame, no awareness goodbye
  await waitFor(() => !b.awareness.getStates().has(idA),
    { timeout: PROMPT_MS, description: 'server removes a dropped client\'s awareness state' })
  t.diagnostic(`dropped client removed from B's awareness after ${Date.now() - t0} ms`)
})

test('late joiner receives existing awareness states on connect', { timeout: 60_000 }, async (t) => {
  const room = roomName('aw-late')
  const a = connectProvider(server.wsUrl, room)
  await waitSynced(a)
  const idA = a.doc.clientID
  const stateA = { user: { name: 'Alice', color: '#123456' }, cursor: { anchor: 0, head: 3 } }
  a.awareness.setLocalState(stateA)
  // Make sure A's state reached the server: a witness connected before C sees it.
  const w = connectProvider(server.wsUrl, room)
  await waitSynced(w)
  await waitFor(() => w.awareness.getStates().get(idA)?.user?.name === 'Alice',
    { timeout: PROMPT_MS, description: 'witness sees A\'s state' })

  // A does not re-broadcast its state for 15 s, so C can only learn it from the server.
  const c = connectProvider(server.wsUrl, room)
  const t0 = Date.now()
  await waitSynced(c)
  await waitFor(() => c.awareness.getStates().get(idA)?.user?.name === 'Alice',
    { timeout: PROMPT_MS, description: 'late joiner C receives A\'s awareness state' })
  assert.deepEqual(c.awareness.getStates().get(idA), stateA)
  t.diagnostic(`late joiner had A's state ${Date.now() - t0} ms after connecting`)
})
