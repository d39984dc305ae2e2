// Stock y-webrtc in Chromium, signalling through TandemX's /signal (docs/signalling.md): two
// browser contexts (no shared BroadcastChannel, so only WebRTC can carry the document) sync a
// Y.Doc peer to peer, with and without y-webrtc's password; the server never holds the
// document; a token for another room cannot subscribe to the topic.

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createProject, mintToken, startServer, waitFor, REPO_ROOT } from '../e2e/server.mjs'
import { roomName } from '../e2e/helpers.mjs'
import { browserMissing, launch, pageBundle, scriptedPage } from './browser.mjs'

const missing = browserMissing()

let server
let browser
let bundle
let project
const contexts = []

before(async () => {
  if (missing !== null) return
  // yjs and the stock y-webrtc provider, bundled for the page from node_modules.
  bundle = await pageBundle("import * as Y from 'yjs'; import { WebrtcProvider } from 'y-webrtc'; window.Y = Y; window.WebrtcProvider = WebrtcProvider", REPO_ROOT)
  server = await startServer()
  project = await createProject(server, 'WebRTC')
  browser = await launch()
}, { timeout: 180_000 })

after(async () => {
  for (const c of contexts) await c.close().catch(() => {})
  await browser?.close()
  await server?.stop()
})

const token = async (room, sub) => (await mintToken(server, project, { sub, room })).token

/** A page in its own browser context (a secure origin: the worker's), with yjs and y-webrtc. */
const page = () => scriptedPage(browser, contexts, `${server.url}/health`, bundle)

/** Starts a WebrtcProvider for `room` on page `p`, signalling through /signal with `tok`. */
function join (p, room, tok, password) {
  const signaling = `${server.url.replace(/^http/, 'ws')}/signal?token=${encodeURIComponent(tok)}`
  return p.evaluate(({ room, signaling, password }) => {
    const doc = new window.Y.Doc()
    const opts = { signaling: [signaling], peerOpts: { config: { iceServers: [] } } }
    if (password) opts.password = password
    window.doc = doc
    window.provider = new window.WebrtcProvider(room, doc, opts)
  }, { room, signaling, password })
}

const peers = (p) => p.evaluate(() => window.provider.room?.webrtcConns.size ?? 0)
const text = (p) => p.evaluate(() => window.doc.getText('t').toString())

async function syncsPeerToPeer (password) {
  const room = roomName('rtc')
  const [a, b] = await Promise.all([page(), page()])
  await join(a, room, await token(room, 'ada'), password)
  await join(b, room, await token('rtc-*', 'grace'), password)
  await waitFor(async () => (await peers(a)) === 1 && (await peers(b)) === 1, { timeout: 30_000, description: 'a WebRTC connection between the pages' })
  await a.evaluate(() => window.doc.getText('t').insert(0, 'hello from a'))
  await waitFor(async () => (await text(b)) === 'hello from a', { timeout: 15_000, description: 'b to receive a\'s edit' })
  await b.evaluate(() => window.doc.getText('t').insert(0, 'b says: '))
  await waitFor(async () => (await text(a)) === 'b says: hello from a', { timeout: 15_000, description: 'a to receive b\'s edit' })
  // Nothing of the document reached the server: no room and no document row was made.
  const doc = await fetch(`${server.url}/v1/projects/${project.project}/documents/${room}`, { headers: { authorization: `Bearer ${project.key}` } })
  assert.equal(doc.status, 404)
  assert.deepEqual([...a.errors, ...b.errors], [])
  for (const p of [a, b]) await p.evaluate(() => window.provider.destroy())
}

// First in the file: the count of hub starts covers every hub of the server, and sockets later
// tests close could wake theirs. Stock y-webrtc (lib0/websocket) sends its exact ping 15 s after
// the last frame it received; the runtime answers it without starting the hub, so two idle pages
// keep their signalling alive for 40 s without one hub start (docs/signalling.md).
test('idle pages\' pings keep signalling alive without waking the hub', { skip: missing ?? false, timeout: 120_000 }, async () => {
  const room = roomName('idle')
  const [a, b] = await Promise.all([page(), page()])
  await join(a, room, await token(room, 'ada'))
  await join(b, room, await token(room, 'grace'))
  await waitFor(async () => (await peers(a)) === 1 && (await peers(b)) === 1, { timeout: 30_000, description: 'a WebRTC connection between the pages' })
  const starts = () => server.logs().split('\n').filter((l) => l.includes('signal hub started')).length
  await waitFor(() => starts() >= 1, { timeout: 10_000, description: 'the hub\'s start in the log' })
  await new Promise((resolve) => setTimeout(resolve, 3_000))
  const before = starts()
  const lastFrame = (p) => p.evaluate(() => window.provider.signalingConns[0].lastMessageReceived)
  const quietSince = await lastFrame(a)
  await new Promise((resolve) => setTimeout(resolve, 40_000))
  assert.equal(starts(), before, 'no hub instance started while the pages idled')
  // The pages' pings were answered all along: their last frame (a pong) is recent, and the
  // sockets and the peer connection are still up.
  for (const p of [a, b]) {
    const last = await lastFrame(p)
    assert.ok(last > quietSince && Date.now() - last < 20_000, `a pong within the last 20 s (${Date.now() - last} ms ago)`)
    assert.equal(await p.evaluate(() => window.provider.signalingConns[0].connected), true)
    assert.equal(await peers(p), 1)
  }
  await a.evaluate(() => window.doc.getText('t').insert(0, 'still here'))
  await waitFor(async () => (await text(b)) === 'still here', { timeout: 15_000, description: 'the document to sync after the idle time' })
  for (const p of [a, b]) await p.evaluate(() => window.provider.destroy())
})

test('two pages sync a Y.Doc peer to peer through /signal', { skip: missing ?? false, timeout: 90_000 }, async () => {
  await syncsPeerToPeer()
})

test('with y-webrtc\'s password (encrypted signalling)', { skip: missing ?? false, timeout: 90_000 }, async () => {
  await syncsPeerToPeer('correct horse battery staple')
})

test('a token for another room cannot subscribe to the topic', { skip: missing ?? false, timeout: 90_000 }, async () => {
  const room = roomName('rtc')
  const [a, intruder] = await Promise.all([page(), page()])
  await join(a, room, await token(room, 'ada'))
  await a.evaluate(() => window.doc.getText('t').insert(0, 'private'))
  const otherRoom = await token('somewhere-else', 'mallory')
  // The raw frames first: the refusal is an error frame naming the topic.
  const signaling = `${server.url.replace(/^http/, 'ws')}/signal?token=${encodeURIComponent(otherRoom)}`
  const refusal = await intruder.evaluate(({ signaling, room }) => new Promise((resolve, reject) => {
    const ws = new WebSocket(signaling)
    ws.onopen = () => ws.send(JSON.stringify({ type: 'subscribe', topics: [room] }))
    ws.onmessage = (e) => { resolve(JSON.parse(e.data)); ws.close() }
    ws.onerror = () => reject(new Error('socket error'))
  }), { signaling, room })
  assert.equal(refusal.type, 'error')
  assert.equal(refusal.error, 'forbidden-topic')
  assert.equal(refusal.topic, room)
  // The stock provider with that token: it connects to the server and finds nobody.
  await join(intruder, room, otherRoom)
  await new Promise((resolve) => setTimeout(resolve, 5_000))
  assert.equal(await peers(intruder), 0)
  assert.equal(await peers(a), 0)
  assert.equal(await text(intruder), '')
  for (const p of [a, intruder]) await p.evaluate(() => window.provider.destroy())
})
