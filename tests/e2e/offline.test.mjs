// Offline editing: a client that disconnects keeps editing; on reconnect its
// edits and the ones made meanwhile by others are merged on both sides.

import { after, afterEach, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startServer, sleep, waitFor } from './server.mjs'
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

test('edits made while disconnected are merged on reconnect', { timeout: 60_000 }, async () => {
  const room = roomName('offline')
  const a = connectProvider(server.wsUrl, room)
  const b = connectProvider(server.wsUrl, room)
  await Promise.all([waitSynced(a), waitSynced(b)])

  const ta = a.doc.getText('text')
  const tb = b.doc.getText('text')
  const ma = a.doc.getMap('map')
  const mb = b.doc.getMap('map')

  a.doc.transact(() => {
    ta.insert(0, 'The quick brown fox')
    ma.set('status', 'draft')
    const tags = new Y.Array()
    tags.push(['base'])
    ma.set('tags', tags)
  })
  await waitFor(() => sameContent(a.doc, b.doc) && tb.toString() === 'The quick brown fox',
    { description: 'B receives the initial content' })

  a.disconnect()
  await waitFor(() => !a.wsconnected && a.ws === null, { description: 'A disconnected' })

  // Both sides edit the same text, the same map and the same nested array.
  ta.insert(0, '[A-offline] ')
  ta.delete(ta.toString().indexOf('quick'), 'quick '.length) // "[A-offline] The brown fox"
  ma.set('fromA', { by: 'A', n: 1 })
  ma.get('tags').push(['a-tag'])
  ma.set('status', 'A-says')

  tb.insert(tb.length, ' [B-online]') // "The quick brown fox [B-online]"
  mb.set('fromB', ['b', 2])
  mb.get('tags').insert(0, ['b-tag'])
  mb.set('status', 'B-says')

  // B's edits reach the server, and A really is offline: it must not see them.
  const c = connectProvider(server.wsUrl, room)
  await waitSynced(c)
  await waitFor(() => c.doc.getText('text').toString().includes('[B-online]'), { description: 'B\'s edits reach the server' })
  await sleep(200)
  assert.ok(!ta.toString().includes('[B-online]'), 'A received B\'s edit while disconnected')
  assert.equal(ma.get('fromB'), undefined)
  assert.ok(!c.doc.getText('text').toString().includes('[A-offline]'), 'A\'s offline edit leaked before reconnect')

  a.connect()
  await waitSynced(a)
  await waitFor(() => sameContent(a.doc, b.doc) && sameContent(a.doc, c.doc) && tb.toString().includes('[A-offline]'),
    { timeout: 15_000, description: 'A, B and C converge after reconnect' })

  const expectedText = '[A-offline] The brown fox [B-online]'
  assert.equal(ta.toString(), expectedText)
  assert.equal(tb.toString(), expectedText)
  for (const m of [ma, mb, c.doc.getMap('map')]) {
    const json = m.toJSON()
    assert.deepEqual(json.fromA, { by: 'A', n: 1 })
    assert.deepEqual(json.fromB, ['b', 2])
    assert.deepEqual(json.tags, ['b-tag', 'base', 'a-tag'])
    assert.ok(['A-says', 'B-says'].includes(json.status), `status is one of the concurrent writes, got ${json.status}`)
  }
  assert.deepEqual(snapshot(a.doc), snapshot(b.doc))
  assert.deepEqual(snapshot(c.doc), snapshot(b.doc))

  // Live sync keeps working after the reconnect, in both directions.
  ta.insert(0, '>')
  tb.insert(tb.length, '<')
  await waitFor(() => ta.toString() === `>${expectedText}<` && tb.toString() === ta.toString(),
    { description: 'edits after reconnect sync both ways' })
})

test('a client that was offline since before others wrote catches up, and its edits survive', { timeout: 60_000 }, async () => {
  // A starts with local content and no connection at all (e.g. a document
  // created offline), then connects to a room that already has content.
  const room = roomName('offline-first')
  const b = connectProvider(server.wsUrl, room)
  await waitSynced(b)
  b.doc.getText('text').insert(0, 'server side')

  const a = connectProvider(server.wsUrl, room, { connect: false })
  a.doc.getText('text').insert(0, 'local first. ')
  a.doc.getMap('map').set('createdOffline', true)
  await sleep(100)
  a.connect()
  await waitSynced(a)
  await waitFor(() => sameContent(a.doc, b.doc) && a.doc.getText('text').length === 'server side'.length + 'local first. '.length,
    { description: 'offline-created content merges with server content' })
  assert.equal(b.doc.getMap('map').get('createdOffline'), true)
  const text = b.doc.getText('text').toString()
  assert.ok(text.includes('server side') && text.includes('local first. '), `merged text: ${text}`)
})
