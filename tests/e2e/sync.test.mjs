// Two stock y-websocket clients edit the same room through the server and
// converge; a late joiner receives the whole document.

import { after, afterEach, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startServer, waitFor, sleep } from './server.mjs'
import { Y, connectProvider, destroyAll, roomName, sameContent, snapshot, waitSynced } from './helpers.mjs'

let server

before(async () => {
  server = await startServer()
}, { timeout: 150_000 })

afterEach(() => destroyAll())

after(async () => {
  destroyAll()
  if (server) await server.stop()
})

const same = (a, b) => sameContent(a.doc, b.doc)

test('Y.Text: sequential and concurrent edits from two clients converge', { timeout: 60_000 }, async () => {
  const room = roomName('sync-text')
  const a = connectProvider(server.wsUrl, room)
  const b = connectProvider(server.wsUrl, room)
  await Promise.all([waitSynced(a), waitSynced(b)])
  const ta = a.doc.getText('text')
  const tb = b.doc.getText('text')

  ta.insert(0, 'Hello')
  await waitFor(() => tb.toString() === 'Hello', { description: 'B receives "Hello"' })

  tb.insert(5, ' World')
  await waitFor(() => ta.toString() === 'Hello World', { description: 'A receives " World"' })

  ta.delete(0, 1) // "ello World"
  ta.insert(0, 'J') // "Jello World"
  await waitFor(() => tb.toString() === 'Jello World', { description: 'B receives A\'s delete + insert' })

  tb.delete(5, 6) // "Jello"
  await waitFor(() => ta.toString() === 'Jello', { description: 'A receives B\'s delete' })

  // Concurrent: both edit before either can see the other's change.
  ta.insert(0, '[A]')
  tb.insert(5, '[B]')
  tb.delete(0, 1) // deletes "J" (B does not know about "[A]" yet)
  await waitFor(() => ta.toString() === tb.toString() && ta.toString().includes('[B]') && ta.toString().includes('[A]'),
    { description: 'concurrent text edits converge' })
  assert.equal(ta.toString(), '[A]ello[B]')
  assert.equal(tb.toString(), '[A]ello[B]')

  // Concurrent inserts at the same position: order is decided by the CRDT,
  // both replicas must agree and keep both.
  ta.insert(3, 'x')
  tb.insert(3, 'y')
  await waitFor(() => ta.toString() === tb.toString() && ta.length === 12, { description: 'same-position inserts converge' })
  assert.match(ta.toString(), /^\[A\](xy|yx)ello\[B\]$/)

  // A burst of small transactions from both sides.
  for (let i = 0; i < 50; i++) {
    ta.insert(ta.length, 'a')
    tb.insert(0, 'b')
  }
  await waitFor(() => ta.length === 112 && tb.length === 112 && ta.toString() === tb.toString(),
    { description: 'burst of 100 transactions converges' })
  assert.equal(ta.toString(), tb.toString())
  assert.equal([...ta.toString()].filter((c) => c === 'a').length, 50)
  assert.equal([...ta.toString()].filter((c) => c === 'b').length, 50)
})

test('Y.Map with nested Y.Map / Y.Array values converges; late joiner gets everything', { timeout: 60_000 }, async () => {
  const room = roomName('sync-map')
  const a = connectProvider(server.wsUrl, room)
  const b = connectProvider(server.wsUrl, room)
  await Promise.all([waitSynced(a), waitSynced(b)])
  const ma = a.doc.getMap('map')
  const mb = b.doc.getMap('map')

  a.doc.transact(() => {
    const settings = new Y.Map()
    settings.set('theme', 'dark')
    settings.set('zoom', 1.5)
    ma.set('settings', settings)
    const items = new Y.Array()
    items.push([1, 2, 3])
    ma.set('items', items)
    ma.set('title', 'Board')
  })
  a.doc.getText('text').insert(0, 'caption')
  await waitFor(() => mb.get('items') instanceof Y.Array && mb.get('items').length === 3 && b.doc.getText('text').toString() === 'caption',
    { description: 'B receives nested map/array' })

  // B edits inside the nested types, A edits concurrently elsewhere and on the same key.
  const settingsB = mb.get('settings')
  settingsB.set('zoom', 2)
  settingsB.set('grid', { size: 8, snap: true })
  mb.get('items').push([4])
  mb.get('items').delete(0, 1)
  const nestedList = new Y.Array()
  nestedList.push(['x', { deep: [1, 'two', null] }])
  settingsB.set('layers', nestedList)
  ma.set('title', 'Board v2')
  ma.get('items').insert(0, [0])
  ma.delete('nonexistent')

  const expected = {
    settings: { theme: 'dark', zoom: 2, grid: { size: 8, snap: true }, layers: ['x', { deep: [1, 'two', null] }] },
    items: [0, 2, 3, 4],
    title: 'Board v2'
  }
  await waitFor(() => same(a, b) && JSON.stringify(ma.toJSON().items) === JSON.stringify(expected.items),
    { description: 'map edits converge', timeout: 15_000 })
  assert.deepEqual(ma.toJSON(), expected)
  assert.deepEqual(mb.toJSON(), expected)
  assert.deepEqual(snapshot(a.doc), snapshot(b.doc))

  // Concurrent writes to the same key: last-writer-wins by the CRDT, same on both.
  ma.set('winner', 'A')
  mb.set('winner', 'B')
  await waitFor(() => ma.get('winner') === mb.get('winner') && same(a, b), { description: 'concurrent same-key writes converge' })
  assert.ok(['A', 'B'].includes(ma.get('winner')))

  // Third client joins late and receives everything, without further edits.
  const c = connectProvider(server.wsUrl, room)
  await waitSynced(c)
  await waitFor(() => same(a, c), { description: 'late joiner C receives the document', timeout: 5_000 })
  assert.deepEqual(snapshot(c.doc), snapshot(a.doc))
  assert.equal(c.doc.getMap('map').get('settings').get('layers').get(1).deep[1], 'two')

  // And C's own edit reaches both earlier clients.
  c.doc.getMap('map').get('items').push([5])
  await waitFor(() => ma.get('items').length === 5 && mb.get('items').length === 5, { description: 'C\'s edit reaches A and B' })
  assert.deepEqual(snapshot(a.doc), snapshot(c.doc))
  assert.deepEqual(snapshot(b.doc), snapshot(c.doc))
})

test('rooms are isolated from each other', { timeout: 60_000 }, async () => {
  const r1 = roomName('sync-iso1')
  const r2 = roomName('sync-iso2')
  const a = connectProvider(server.wsUrl, r1)
  const b = connectProvider(server.wsUrl, r2)
  const a2 = connectProvider(server.wsUrl, r1)
  await Promise.all([waitSynced(a), waitSynced(b), waitSynced(a2)])
  a.doc.getText('text').insert(0, 'only in room 1')
  await waitFor(() => a2.doc.getText('text').toString() === 'only in room 1', { description: 'same-room client receives edit' })
  await sleep(300)
  assert.equal(b.doc.getText('text').toString(), '', 'edit leaked into another room')
})
