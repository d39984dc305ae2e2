// Bad input: each malformed frame closes only the offending connection with the
// right close code, is logged, and leaves the room and its healthy clients
// untouched. A full room refuses further upgrades with HTTP 503.

import { after, afterEach, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import * as encoding from 'lib0/encoding'
import { IS_REFERENCE, sleep, startServer, waitFor } from './server.mjs'
import {
  Y, connectProvider, destroyAll, destroyProvider, openRaw, roomName, sameContent, seededBytes, snapshot, waitSynced
} from './helpers.mjs'

const SKIP = IS_REFERENCE ? 'the reference server does not validate input or enforce limits' : false
const MAX_FRAME_BYTES = 65536
const CLOSE_TIMEOUT_MS = 10_000

/** y-protocols framing: [messageSync, messageYjsUpdate, varUint8Array(payload)]. */
function syncUpdateFrame (payload) {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, 0) // sync
  encoding.writeVarUint(enc, 2) // update
  encoding.writeVarUint8Array(enc, payload)
  return encoding.toUint8Array(enc)
}

/** A valid sync Update frame of exactly `size` bytes (a long text insert). */
function validUpdateFrameOfSize (size) {
  let len = size
  for (;;) {
    const doc = new Y.Doc()
    doc.getText('text').insert(0, 'z'.repeat(len))
    const frame = syncUpdateFrame(Y.encodeStateAsUpdate(doc))
    if (frame.length === size) return frame
    len += size - frame.length
  }
}

/** Resolves with the close event, or rejects after `ms`. */
function closedWithin (sock, ms) {
  let timer
  return Promise.race([
    sock.e2e.closed,
    new Promise((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`server did not close the connection within ${ms} ms`)), ms)
    })
  ]).finally(() => clearTimeout(timer))
}

// Worker output after `mark` that looks like a rejection being reported
// (wrangler's own "[wrangler:info] GET ..." request lines do not count, nor the worker's
// http.request line of each request: its random id may hold any of these words).
const REJECTION_WORDS = /reject|invalid|malformed|unsupported|unknown|unexpected|too large|too big|oversize|exceed|limit|decod|truncat|text frame|bad|error|warn|close|1003|1007|1009/i
function rejectionLogged (server, mark) {
  return server.logs().slice(mark).split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('[wrangler') && !line.includes('"event":"http.request"'))
    .some((line) => REJECTION_WORDS.test(line))
}

describe('malformed frames', { skip: SKIP }, () => {
  let server

  before(async () => {
    if (SKIP) return
    server = await startServer({ vars: { MAX_FRAME_BYTES: String(MAX_FRAME_BYTES) } })
  }, { timeout: 150_000 })

  afterEach(() => destroyAll())

  after(async () => {
    destroyAll()
    if (server) await server.stop()
  })

  /**
   * Opens a raw connection next to two healthy providers, sends `frame`, and
   * checks the close code and that the room is unaffected.
   */
  async function expectRejected (t, label, frame, expectedCode) {
    const room = roomName(label)
    const b = connectProvider(server.wsUrl, room)
    const c = connectProvider(server.wsUrl, room)
    await Promise.all([waitSynced(b), waitSynced(c)])
    b.doc.getText('text').insert(0, 'healthy content')
    b.doc.getMap('map').set('k', { v: 1 })
    await waitFor(() => sameContent(b.doc, c.doc) && c.doc.getText('text').length > 0, { description: 'C receives B\'s content' })
    const before = snapshot(b.doc)
    const counts = { b: { ...b.e2e }, c: { ...c.e2e } }

    const raw = openRaw(`${server.wsUrl}/${room}`)
    await raw.e2e.opened
    const mark = server.logs().length
    raw.send(frame)
    const { code, reason } = await closedWithin(raw, CLOSE_TIMEOUT_MS)
    t.diagnostic(`${label}: closed with ${code} ${JSON.stringify(reason)}`)
    assert.equal(code, expectedCode, `close code for ${label}`)

    // The healthy clients were never disconnected, and nothing was applied.
    await sleep(300)
    for (const [name, p] of [['B', b], ['C', c]]) {
      assert.ok(p.wsconnected && p.synced, `${name} still connected`)
      assert.deepEqual(p.e2e, counts[name === 'B' ? 'b' : 'c'], `${name} did not reconnect`)
      assert.deepEqual(snapshot(p.doc), before, `${name}'s document unchanged`)
    }

    // The room still syncs: B's next edit reaches C, and a fresh client gets
    // exactly the healthy content from the server.
    b.doc.getText('text').insert(0, '+')
    await waitFor(() => c.doc.getText('text').toString() === '+healthy content', { description: 'B\'s next edit reaches C' })
    const d = connectProvider(server.wsUrl, room)
    await waitSynced(d)
    await waitFor(() => sameContent(d.doc, b.doc), { timeout: 5_000 }).catch(() => {})
    assert.deepEqual(snapshot(d.doc), snapshot(b.doc), 'fresh client gets the untouched document')

    await waitFor(() => rejectionLogged(server, mark),
      { timeout: 5_000, description: () => `a log line about the rejected ${label} (new output: ${JSON.stringify(server.logs().slice(mark).slice(-500))})` })
  }

  test('text frame -> 1003', { timeout: 60_000 }, async (t) => {
    await expectRejected(t, 'text-frame', 'hello, I am text', 1003)
  })

  test('unknown message type 9 -> 1003', { timeout: 60_000 }, async (t) => {
    await expectRejected(t, 'unknown-type', new Uint8Array([0x09, 0x00]), 1003)
  })

  test('truncated sync update -> 1007', { timeout: 60_000 }, async (t) => {
    // sync, update, declared length 10, only 2 bytes follow
    await expectRejected(t, 'truncated', new Uint8Array([0x00, 0x02, 0x0a, 0x01, 0x02]), 1007)
  })

  test('undecodable update payload -> 1007', { timeout: 60_000 }, async (t) => {
    // 40 fixed pseudo-random bytes: the first varuint claims ~1M client
    // groups, so any v1 update decoder runs out of input.
    const payload = seededBytes(4, 40)
    assert.throws(() => Y.applyUpdate(new Y.Doc(), payload), 'payload must be undecodable')
    await expectRejected(t, 'undecodable', syncUpdateFrame(payload), 1007)
  })

  test('frame larger than MAX_FRAME_BYTES -> 1009', { timeout: 60_000 }, async (t) => {
    // A perfectly valid update, only too big: the size alone must be the reason.
    const frame = validUpdateFrameOfSize(70_000)
    assert.equal(frame.length, 70_000)
    assert.ok(frame.length > MAX_FRAME_BYTES)
    await expectRejected(t, 'oversize', frame, 1009)
  })

  test('a frame just under MAX_FRAME_BYTES is accepted', { timeout: 60_000 }, async () => {
    const room = roomName('undersize')
    const b = connectProvider(server.wsUrl, room)
    await waitSynced(b)
    const raw = openRaw(`${server.wsUrl}/${room}`)
    await raw.e2e.opened
    const frame = validUpdateFrameOfSize(MAX_FRAME_BYTES - 1024)
    raw.send(frame)
    await waitFor(() => b.doc.getText('text').length > 60_000, { description: 'B receives the large but allowed update' })
    assert.ok(raw.readyState === raw.OPEN, 'raw connection still open')
  })
})

describe('room capacity', { skip: SKIP }, () => {
  let server

  before(async () => {
    if (SKIP) return
    server = await startServer({ vars: { MAX_CONNECTIONS_PER_ROOM: '3' } })
  }, { timeout: 150_000 })

  afterEach(() => destroyAll())

  after(async () => {
    destroyAll()
    if (server) await server.stop()
  })

  test('4th connection to a room is refused with 503; other rooms still accept', { timeout: 60_000 }, async (t) => {
    const room = roomName('full')
    const members = [0, 1, 2].map(() => connectProvider(server.wsUrl, room))
    await Promise.all(members.map((p) => waitSynced(p)))
    const counts = members.map((p) => ({ ...p.e2e }))

    const fourth = openRaw(`${server.wsUrl}/${room}`)
    const err = await fourth.e2e.opened.then(() => null, (e) => e)
    assert.ok(err, '4th connection must not open')
    assert.equal(err.statusCode, 503, `4th connection refused with HTTP 503 (got: ${err.message})`)

    // The three members are unaffected and still sync.
    members.forEach((p, i) => {
      assert.ok(p.wsconnected && p.synced, `member ${i} still connected`)
      assert.deepEqual(p.e2e, counts[i], `member ${i} did not reconnect`)
    })
    members[0].doc.getText('text').insert(0, 'still live')
    await waitFor(() => members.every((p) => p.doc.getText('text').toString() === 'still live'),
      { description: 'members still sync after the refusal' })

    // Another room still accepts connections.
    const other = connectProvider(server.wsUrl, roomName('other'))
    await waitSynced(other)

    // When a member leaves, its slot becomes free again.
    destroyProvider(members[2])
    const t0 = Date.now()
    await waitFor(async () => {
      const s = openRaw(`${server.wsUrl}/${room}`)
      try {
        await s.e2e.opened
        return true
      } catch {
        return false
      } finally {
        s.terminate()
      }
    }, { timeout: 10_000, interval: 200, description: 'a freed slot accepts a new connection' })
    t.diagnostic(`freed slot reusable after ${Date.now() - t0} ms`)
  })
})
