// Hibernation: an idle room is evicted from memory while its sockets stay open (workerd does
// this after some seconds without events). When a message wakes it, it must reload the
// document, keep each connection's identity and awareness ownership, and re-sync.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { IS_REFERENCE, startServer, waitFor } from './server.mjs'
import { connectProvider, destroyAll, destroyProvider, roomName, waitSynced } from './helpers.mjs'

let server

before(async () => {
  if (!IS_REFERENCE) server = await startServer()
}, { timeout: 150_000 })

after(async () => {
  destroyAll()
  if (server) await server.stop()
})

const WOKE = 'room woke from hibernation'
// Logged when a message made the room decode its document (src/edge/room_object.rs).
const DECODED = 'room decoded its document'
const lines = () => server.logs().split('\n').filter((l) => l.includes(WOKE) || l.includes(DECODED))
const wakes = () => lines().filter((l) => l.includes(WOKE)).length

test('a room that hibernated wakes with its document, presence and connections intact', {
  timeout: 150_000,
  skip: IS_REFERENCE && 'the reference server does not hibernate'
}, async () => {
  const room = roomName('hib')
  const a = connectProvider(server.wsUrl, room)
  const b = connectProvider(server.wsUrl, room)
  await waitSynced(a)
  await waitSynced(b)
  a.doc.getText('t').insert(0, 'written before sleep')
  a.awareness.setLocalStateField('user', { name: 'Ada' })
  await waitFor(() => b.doc.getText('t').toString() === 'written before sleep')
  const aId = a.awareness.clientID
  await waitFor(() => b.awareness.getStates().get(aId)?.user?.name === 'Ada', { description: 'b sees Ada' })

  // Stay idle until the runtime evicts the room; the clients' periodic awareness renewal
  // (every 15 s) wakes it again.
  const before = wakes()
  await waitFor(() => wakes() > before, { timeout: 100_000, interval: 500, description: 'the room to hibernate and wake' })
  // The renewal that woke it is relayed without decoding the document. wrangler prints an
  // object's lines when its event ends (those of the events before the sleep when it sleeps):
  // a decode for the waking message would follow the wake's line.
  await new Promise((resolve) => setTimeout(resolve, 2_000))
  const log = lines()
  const wake = log.findIndex((l, i) => l.includes(WOKE) && log.slice(0, i).filter((m) => m.includes(WOKE)).length === before)
  assert.deepEqual(log.slice(wake + 1).filter((l) => l.includes(DECODED)), [], `no decode after the wake:\n${log.join('\n')}`)

  // After the wake: a newcomer gets the document and Ada's presence (relearned from the
  // awareness query the room sends its surviving connections when the newcomer joins).
  const c = connectProvider(server.wsUrl, room)
  await waitSynced(c)
  assert.equal(c.doc.getText('t').toString(), 'written before sleep')
  await waitFor(() => c.awareness.getStates().get(aId)?.user?.name === 'Ada', { description: 'newcomer sees Ada after the wake' })

  // Surviving connections still sync both ways.
  b.doc.getText('t').insert(0, 'after wake: ')
  await waitFor(() => a.doc.getText('t').toString() === 'after wake: written before sleep', { description: 'a gets b\'s edit' })

  // Ada's connection drops without a goodbye: the room still knows her awareness id is hers
  // (from the socket attachment) and tells the others at once.
  a.shouldConnect = false
  a.ws.terminate()
  await waitFor(() => !c.awareness.getStates().has(aId), { timeout: 10_000, description: 'Ada removed after her socket dropped' })
  destroyProvider(a)
  destroyProvider(b)
  destroyProvider(c)
})

test('a connection that closes while the room sleeps leaves no ghost presence', {
  timeout: 150_000,
  skip: IS_REFERENCE && 'the reference server does not hibernate'
}, async () => {
  const room = roomName('ghost')
  const a = connectProvider(server.wsUrl, room)
  const b = connectProvider(server.wsUrl, room)
  await Promise.all([waitSynced(a), waitSynced(b)])
  b.awareness.setLocalStateField('user', { name: 'Bo' })
  const bId = b.awareness.clientID
  await waitFor(() => a.awareness.getStates().get(bId)?.user?.name === 'Bo', { description: 'a sees Bo' })
  // No renewals and no timeouts: the room stays idle until the runtime evicts it, and a keeps
  // Bo's state as a client that has not heard of her leaving would.
  for (const p of [a, b]) clearInterval(p.awareness._checkInterval)
  const before = wakes()
  await new Promise((resolve) => setTimeout(resolve, 30_000))
  assert.equal(wakes(), before, 'nothing woke the room while it slept')
  // Bo's socket closes while the room sleeps: the close wakes it, and a answers the room's
  // awareness query with every state it knows, Bo's included.
  b.shouldConnect = false
  b.ws.terminate()
  await waitFor(() => wakes() > before, { timeout: 30_000, description: 'the close woke the room' })
  await waitFor(() => !a.awareness.getStates().has(bId), { timeout: 10_000, description: 'a told Bo is gone' })
  const c = connectProvider(server.wsUrl, room)
  await waitSynced(c)
  await new Promise((resolve) => setTimeout(resolve, 1000))
  assert.ok(!c.awareness.getStates().has(bId), 'a newcomer sees no ghost of Bo')
  destroyProvider(a)
  destroyProvider(b)
  destroyProvider(c)
})
