// Voice and video calls in Chromium (docs/calls.md): the SDK's joinCall (client/lib, bundled for
// the page) in separate browser contexts with Chromium's fake camera and microphone, signalling
// through the worker's /signal under `wrangler dev`: media flows both ways and is decoded, a
// mute reaches the other side's participant list, a project's call_max_participants makes the
// next joinCall reject with CallFullError, and a viewer receives without publishing. Then the
// demo: the canvas toolbar's Call button opens video tiles in two pages.

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { createProject, mintToken, waitFor, REPO_ROOT } from '../e2e/server.mjs'
import { roomName } from '../e2e/helpers.mjs'
import { startDemoServer } from './server.mjs'
import { browserMissing, launch, pageBundle, scriptedPage } from './browser.mjs'

const ARTIFACTS = new URL('./artifacts/', import.meta.url)
const missing = browserMissing()
// No STUN server on the internet: peers on one machine meet through host candidates, and the
// route still answers a list (a loopback STUN URL nothing listens on).
const STUN = 'stun:127.0.0.1:3478'

let server
let browser
let bundle
const contexts = []

before(async () => {
  if (missing !== null) return
  server = await startDemoServer({ vars: { ICE_STUN_URLS: STUN } })
  // The built SDK (startDemoServer builds client/lib when it is missing), for the page.
  bundle = await pageBundle("import * as sdk from './lib/index.js'; window.tandemxSdk = sdk", `${REPO_ROOT}client`)
  browser = await launch({ args: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--autoplay-policy=no-user-gesture-required'] })
}, { timeout: 180_000 })

after(async () => {
  for (const c of contexts) await c.close().catch(() => {})
  await browser?.close()
  await server?.stop()
})

/** A room token of `proj` (its owner key) for `room`. */
const token = async (proj, room, sub, role = 'editor') => (await mintToken(server, proj, { sub, room, role, ttl_seconds: 600 })).token

/** A page in its own browser context on the worker's origin (a secure one), with the SDK. */
const page = () => scriptedPage(browser, contexts, `${server.url}/health`, bundle)

/**
 * joinCall on page `p`; answers what the call says of itself, or the error's class, code and
 * limit. Remote streams are played (Chromium measures received audio where it is played out).
 */
function join (p, proj, room, tok) {
  return p.evaluate(async ({ server, project, room, tok }) => {
    const sdk = window.tandemxSdk
    try {
      const call = await sdk.joinCall(room, { server, project, getToken: () => tok })
      window.call = call
      window.callErrors = []
      call.on('error', (e) => window.callErrors.push(`${e.code}: ${e.message}`))
      const play = (list) => {
        for (const q of list) {
          if (q.stream === null) continue
          let el = document.getElementById(`peer-${q.peer}`)
          if (el === null) {
            el = document.createElement('video')
            el.id = `peer-${q.peer}`
            el.autoplay = true
            document.body.append(el)
          }
          if (el.srcObject !== q.stream) el.srcObject = q.stream
        }
      }
      call.on('participants', play)
      play(call.participants())
      return { ok: true, self: call.self, publish: call.publish, limit: call.limit, local: call.localStream === null ? null : call.localStream.getTracks().map((t) => t.kind).sort() }
    } catch (err) {
      return { ok: false, name: err.name, code: err.code, limit: err.limit, full: err instanceof sdk.CallFullError, callError: err instanceof sdk.CallError, message: err.message }
    }
  }, { server: server.url, project: proj.project, room, tok })
}

/** What page `p` receives from each participant: their state, tracks, decoded video, audio packets. */
function received (p) {
  return p.evaluate(async () => {
    const out = []
    for (const q of window.call.participants()) {
      const r = { user: q.user, role: q.role, publish: q.publish, audio: q.audio, video: q.video, tracks: q.stream === null ? null : q.stream.getTracks().map((t) => t.kind).sort(), framesDecoded: 0, audioPackets: 0 }
      const stats = await window.call.connection(q.peer).getStats()
      stats.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') r.framesDecoded += s.framesDecoded ?? 0
        if (s.type === 'inbound-rtp' && s.kind === 'audio') r.audioPackets += s.packetsReceived ?? 0
      })
      out.push(r)
    }
    return out
  })
}

const flowing = (list, user) => list.some((r) => r.user === user && r.tracks?.join() === 'audio,video' && r.framesDecoded > 0 && r.audioPackets > 0)

test('two browsers in a call: audio and video both ways, decoded; a mute reaches the other side', { skip: missing ?? false, timeout: 120_000 }, async () => {
  const proj = await createProject(server, 'Calls')
  const room = roomName('call')
  const [a, b] = await Promise.all([page(), page()])
  const ada = await join(a, proj, room, await token(proj, room, 'ada'))
  assert.deepEqual([ada.ok, ada.publish, ada.limit, ada.local], [true, true, 8, ['audio', 'video']], JSON.stringify(ada))
  const grace = await join(b, proj, room, await token(proj, 'call-*', 'grace'))
  assert.equal(grace.ok, true, JSON.stringify(grace))
  await waitFor(async () => flowing(await received(a), 'grace') && flowing(await received(b), 'ada'),
    { timeout: 45_000, description: 'media flowing both ways' })
  const [ra] = await received(a)
  assert.deepEqual([ra.user, ra.role, ra.publish, ra.audio, ra.video], ['grace', 'editor', true, true, true])
  // The ICE servers came from the project's route.
  const ice = await a.evaluate(({ server, project, tok }) => window.tandemxSdk.fetchIceServers(server, project, tok), { server: server.url, project: proj.project, tok: await token(proj, room, 'ada') })
  assert.deepEqual(ice.map((s) => s.urls).flat(), [STUN])

  await a.evaluate(() => window.call.setMuted(true))
  await waitFor(async () => (await received(b))[0].audio === false, { timeout: 10_000, description: 'grace sees ada muted' })
  assert.equal((await received(b))[0].video, true)
  await a.evaluate(() => window.call.setCamera(false))
  await waitFor(async () => (await received(b))[0].video === false, { timeout: 10_000, description: 'grace sees ada\'s camera off' })

  await a.evaluate(() => window.call.leave())
  await waitFor(async () => (await received(b)).length === 0, { timeout: 10_000, description: 'grace sees ada leave' })
  assert.deepEqual(await b.evaluate(() => window.callErrors), [])
  await b.evaluate(() => window.call.leave())
  assert.deepEqual([...a.errors, ...b.errors], [])
})

test('call_max_participants 2: the third joinCall rejects with CallFullError', { skip: missing ?? false, timeout: 120_000 }, async () => {
  const proj = await createProject(server, 'Small calls')
  const patched = await fetch(`${server.url}/v1/projects/${proj.project}`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${proj.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ call_max_participants: 2 })
  })
  assert.equal(patched.status, 200)
  assert.equal((await patched.json()).call_max_participants, 2)
  const room = roomName('full')
  const [a, b, c] = await Promise.all([page(), page(), page()])
  const first = await join(a, proj, room, await token(proj, room, 'ada'))
  assert.deepEqual([first.ok, first.limit], [true, 2], JSON.stringify(first))
  assert.equal((await join(b, proj, room, await token(proj, room, 'grace'))).ok, true)
  const third = await join(c, proj, room, await token(proj, room, 'linus'))
  assert.deepEqual({ ok: third.ok, name: third.name, code: third.code, limit: third.limit, full: third.full, callError: third.callError },
    { ok: false, name: 'CallFullError', code: 'call-full', limit: 2, full: true, callError: true })
  // The two inside are still two, and did not hear of the third.
  assert.deepEqual((await received(a)).map((r) => r.user), ['grace'])
  for (const p of [a, b]) await p.evaluate(() => window.call.leave())
})

test('a viewer joins without publishing, gets no local stream, and receives the editor\'s video', { skip: missing ?? false, timeout: 120_000 }, async () => {
  const proj = await createProject(server, 'Viewer calls')
  const room = roomName('watch')
  const [a, v] = await Promise.all([page(), page()])
  assert.equal((await join(a, proj, room, await token(proj, room, 'ada'))).ok, true)
  const viewer = await join(v, proj, room, await token(proj, room, 'vera', 'viewer'))
  assert.deepEqual([viewer.ok, viewer.publish, viewer.local], [true, false, null], JSON.stringify(viewer))
  await waitFor(async () => flowing(await received(v), 'ada'), { timeout: 45_000, description: 'the viewer receiving the editor' })
  // The editor sees a participant who does not publish, with no stream, and nothing arrives.
  const onEditor = (await received(a))[0]
  assert.deepEqual([onEditor.user, onEditor.role, onEditor.publish, onEditor.audio, onEditor.video, onEditor.tracks], ['vera', 'viewer', false, false, false, null])
  assert.equal(onEditor.framesDecoded, 0)
  assert.deepEqual(await v.evaluate(() => window.callErrors), [])
  assert.deepEqual(await a.evaluate(() => window.callErrors), [])
  for (const p of [a, v]) await p.evaluate(() => window.call.leave())
})

test('demo: the canvas Call button opens video tiles in two pages, named from presence', { skip: missing ?? false, timeout: 120_000 }, async () => {
  const room = roomName('demo-call')
  const open = async (name, color) => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 700 } })
    contexts.push(context)
    const p = await context.newPage()
    p.errors = []
    p.on('pageerror', (err) => p.errors.push(err.message))
    await p.goto(`${server.url}/?${new URLSearchParams({ room, name, color, role: 'editor' })}`)
    await p.waitForSelector('#status[data-status="synced"]', { timeout: 30_000 })
    return p
  }
  const a = await open('Ada', '#e4572e')
  const b = await open('Grace', '#2e6fd8')
  await a.click('[data-testid="call-button"]')
  await a.waitForSelector('[data-testid="call-tile"][data-local="true"]', { timeout: 20_000 })
  await b.click('[data-testid="call-button"]')
  const remoteVideo = (p) => p.evaluate(() => {
    const v = document.querySelector('[data-testid="call-tile"][data-local="false"] video')
    return v !== null && v.videoWidth > 0 && v.currentTime > 0
  })
  await waitFor(async () => (await remoteVideo(a)) && (await remoteVideo(b)), { timeout: 45_000, description: 'each page playing the other\'s video' })
  const names = (p) => p.$$eval('[data-testid="call-tile-name"]', (els) => els.map((e) => e.textContent))
  await waitFor(async () => (await names(a)).join() === 'Ada (you),Grace' && (await names(b)).join() === 'Grace (you),Ada',
    { timeout: 10_000, description: 'tiles named from presence' })
  assert.equal(await a.textContent('#call-title'), 'Call · 2 of 8')

  await b.click('[data-testid="call-mute"]')
  await a.waitForSelector('[data-testid="call-tile"][data-local="false"][data-audio="false"]', { timeout: 10_000 })
  await screenshotPair(a, b, 'call.png')

  await a.click('[data-testid="call-leave"]')
  await b.waitForFunction(() => document.querySelectorAll('[data-testid="call-tile"]').length === 1, null, { timeout: 10_000 })
  assert.equal(await a.isHidden('[data-testid="call-panel"]'), true)
  await b.click('[data-testid="call-button"]') // Leave call
  assert.deepEqual([...a.errors, ...b.errors], [])
})

/** Saves both pages side by side as one PNG. */
async function screenshotPair (left, right, file) {
  const [l, r] = await Promise.all([left.screenshot(), right.screenshot()])
  const context = await browser.newContext({ viewport: { width: 2236, height: 760 } })
  const p = await context.newPage()
  const img = (buf, title) => `<figure><figcaption>${title}</figcaption><img src="data:image/png;base64,${buf.toString('base64')}"></figure>`
  await p.setContent(`<style>body{margin:0;display:flex;gap:12px;padding:12px;background:#3b4252;font:14px system-ui}
    figure{margin:0}figcaption{color:#fff;margin:0 0 6px}img{display:block;border-radius:6px}</style>
    ${img(l, 'Window 1 — Ada')}${img(r, 'Window 2 — Grace, muted')}`)
  fs.mkdirSync(ARTIFACTS, { recursive: true })
  await p.screenshot({ path: new URL(file, ARTIFACTS).pathname, fullPage: true })
  await context.close()
}
