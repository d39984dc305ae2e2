import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { joinCall, signalUrl, fetchIceServers, iceSchedule, CallError, CallFullError, SpeakingDetector, audioLevels, createPresence } from '../lib/index.js'
import { startFakeSignal } from './fake-signal.mjs'
import { createFakeRtc } from './fake-webrtc.mjs'

const ROOM = 'board-1'
const TOKENS = {
  'tok-ada': { user: 'ada', role: 'editor' },
  'tok-bob': { user: 'bob', role: 'editor' },
  'tok-cy': { user: 'cy', role: 'owner' },
  'tok-vic': { user: 'vic', role: 'viewer' },
  'tok-elsewhere': { user: 'eve', role: 'editor', rooms: 'other-*' }
}

const open = new Set()
after(async () => { for (const c of open) await c.leave() })

async function until (fn, what, timeout = 3000) {
  const start = Date.now()
  while (!fn()) {
    if (Date.now() - start > timeout) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

async function setup (opts = {}) {
  const hub = await startFakeSignal({ tokens: TOKENS, ...opts })
  after(() => hub.stop())
  const rtc = createFakeRtc()
  /** joinCall as `user` with the fakes; left after the tests. */
  const join = async (user, more = {}) => {
    const reasons = []
    const call = await joinCall(ROOM, {
      server: hub.url,
      project: 'prj_test',
      getToken: ({ reason }) => { reasons.push(reason); return `tok-${user}` },
      WebSocket,
      RTCPeerConnection: rtc.RTCPeerConnection,
      MediaStream: rtc.MediaStream,
      getUserMedia: rtc.getUserMedia,
      speakingPollMs: 20,
      ...more
    })
    call.reasons = reasons
    open.add(call)
    return call
  }
  return { hub, rtc, join }
}

const kinds = (stream) => (stream?.getTracks() ?? []).map((t) => t.kind).sort()
const directions = (sdp) => [...sdp.matchAll(/^m=(\w+).*\r\n(?:.*\r\n)*?a=(sendrecv|sendonly|recvonly|inactive)/gm)].map((m) => `${m[1]}:${m[2]}`)

test('signalUrl accepts http(s) and ws(s) servers, with or without /rooms or /signal', () => {
  assert.equal(signalUrl('http://127.0.0.1:8787'), 'ws://127.0.0.1:8787/signal')
  assert.equal(signalUrl('https://x.example/'), 'wss://x.example/signal')
  assert.equal(signalUrl('wss://x.example/rooms'), 'wss://x.example/signal')
  assert.equal(signalUrl('ws://h/base/signal/'), 'ws://h/base/signal')
  assert.throws(() => signalUrl('ftp://h'))
})

const TURN = { urls: ['turn:turn.test:3478'], username: 'u', credential: 'c' }

test('fetchIceServers: the list as before, with expiresAt and ttl from the answer', async () => {
  const hub = await startFakeSignal({ tokens: TOKENS, iceServers: [{ urls: ['stun:stun.test:3478'] }, TURN], iceTtl: 600 })
  after(() => hub.stop())
  const before = Date.now()
  const list = await fetchIceServers(hub.url, 'prj_test', 'tok-ada')
  assert.ok(Array.isArray(list))
  assert.deepEqual([...list], [{ urls: ['stun:stun.test:3478'] }, TURN])
  assert.equal(list.ttl, 600)
  assert.ok(list.expiresAt >= before + 600_000 && list.expiresAt <= Date.now() + 600_000)
  await assert.rejects(fetchIceServers(hub.url, 'prj_test', 'tok-nobody'))
})

test('iceSchedule: at 80% of the lifetime, at least 30 s before the end, only with a credential', () => {
  const list = (servers, ttl, expiresAt = null) => Object.assign(servers, { ttl, expiresAt })
  const now = 1_000_000
  assert.deepEqual(iceSchedule(list([TURN], 3600), now), { refreshAt: now + 2_880_000, expiresAt: now + 3_600_000 })
  assert.deepEqual(iceSchedule(list([TURN], 120), now), { refreshAt: now + 90_000, expiresAt: now + 120_000 }) // 30 s before
  assert.deepEqual(iceSchedule(list([TURN], 40), now), { refreshAt: now + 20_000, expiresAt: now + 40_000 }) // halfway
  // Without a ttl, expires_at (unix ms) gives the lifetime.
  assert.deepEqual(iceSchedule(list([TURN], null, now + 600_000), now), { refreshAt: now + 480_000, expiresAt: now + 600_000 })
  // Nothing to refresh: STUN only, no lifetime, one already over.
  assert.equal(iceSchedule(list([{ urls: ['stun:stun.test:3478'] }], 3600), now), null)
  assert.equal(iceSchedule(list([{ ...TURN, credential: '' }], 3600), now), null)
  assert.equal(iceSchedule(list([TURN], null), now), null)
  assert.equal(iceSchedule(list([TURN], null, now - 1), now), null)
})

test('the newcomer offers to every listed participant; streams arrive both ways', async () => {
  const { hub, rtc, join } = await setup()
  const ada = await join('ada')
  assert.equal(ada.publish, true)
  assert.equal(ada.limit, 8)
  assert.deepEqual(ada.participants(), [])
  assert.deepEqual(kinds(ada.localStream), ['audio', 'video'])
  assert.deepEqual(rtc.mediaRequests, [{ audio: true, video: true }])
  assert.deepEqual(hub.frames('ada', 'call-join'), [{ type: 'call-join', room: ROOM, audio: true, video: true }])
  assert.deepEqual(ada.reasons, ['initial'])
  // The ICE servers came from the project's route, with the room token.
  assert.deepEqual([hub.iceRequests[0].project, hub.iceRequests[0].authorization], ['prj_test', 'Bearer tok-ada'])

  const bob = await join('bob')
  assert.deepEqual(bob.participants().map((p) => [p.peer, p.user, p.role, p.publish, p.audio, p.video]), [[ada.self, 'ada', 'editor', true, true, true]])
  const sdps = (who) => hub.frames(who, 'call-signal').filter((f) => f.data.sdp !== undefined)
  await until(() => sdps('bob').length === 1, 'bob\'s offer at the hub')
  const offers = sdps('bob')
  assert.deepEqual(offers.map((f) => [f.to, f.data.sdp.type]), [[ada.self, 'offer']])
  assert.deepEqual(directions(offers[0].data.sdp.sdp), ['audio:sendrecv', 'video:sendrecv'])
  assert.deepEqual(rtc.connections.at(-1).config, { iceServers: [{ urls: ['stun:stun.test:3478'] }] })

  await until(() => kinds(bob.participants()[0]?.stream).length === 2 && kinds(ada.participants()[0]?.stream).length === 2, 'streams both ways')
  const answer = hub.frames('ada', 'call-signal').find((f) => f.data.sdp !== undefined)
  assert.equal(answer.to, bob.self)
  assert.deepEqual(directions(answer.data.sdp.sdp), ['audio:sendrecv', 'video:sendrecv'])
  // Each side's candidate left before its description; the other queued it until it could apply it.
  for (const pc of rtc.connections) assert.equal(pc.candidates.length, 1)

  // A third: offers to both, none from the two already there.
  const before = { ada: hub.frames('ada', 'call-signal').length, bob: hub.frames('bob', 'call-signal').length }
  const cy = await join('cy')
  await until(() => sdps('cy').length === 2, 'cy\'s offers at the hub')
  const cyOffers = hub.frames('cy', 'call-signal').filter((f) => f.data.sdp?.type === 'offer').map((f) => f.to).sort()
  assert.deepEqual(cyOffers, [ada.self, bob.self].sort())
  await until(() => cy.participants().every((p) => kinds(p.stream).length === 2) && ada.participants().length === 2, 'cy meshed')
  for (const who of ['ada', 'bob']) {
    assert.ok(hub.frames(who, 'call-signal').slice(before[who]).every((f) => f.to === cy.self && f.data.sdp?.type !== 'offer'), `${who} only answers cy`)
  }
  const errors = []
  for (const c of [ada, bob, cy]) c.on('error', (e) => errors.push(e))
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.deepEqual(errors, [])
})

test('a full call rejects with CallFullError before any media is asked for', async () => {
  const { hub, rtc, join } = await setup({ limit: 2 })
  await join('ada')
  await join('bob')
  const asked = rtc.mediaRequests.length
  await assert.rejects(join('cy'), (err) => {
    assert.ok(err instanceof CallFullError)
    assert.ok(err instanceof CallError)
    assert.equal(err.code, 'call-full')
    assert.equal(err.limit, 2)
    return true
  })
  assert.equal(rtc.mediaRequests.length, asked)
  await until(() => hub.conn('cy').ws.readyState === hub.conn('cy').ws.CLOSED, 'cy\'s socket closed')
  assert.equal(hub.participants(ROOM).length, 2)
})

test('refusals: a room the token does not cover, a refused socket, a failing getToken', async () => {
  const { join } = await setup()
  await assert.rejects(join('elsewhere'), (err) => err instanceof CallError && !(err instanceof CallFullError) && err.code === 'forbidden-room')
  await assert.rejects(join('nobody'), (err) => err instanceof CallError && err.code === 'closed' && typeof err.closeCode === 'number')
  await assert.rejects(join('ada', { getToken: () => { throw new Error('backend down') } }), (err) => err instanceof CallError && err.code === 'token' && err.cause.message === 'backend down')
  await assert.rejects(join('ada', { getUserMedia: async () => { throw new Error('NotAllowedError') } }), (err) => err instanceof CallError && err.code === 'media')
})

test('forbidden-media: a non-publisher whose offer claims to send is refused, and the call says so', async () => {
  const { hub, rtc, join } = await setup()
  const ada = await join('ada')
  const errors = []
  ada.on('error', (e) => errors.push(e))
  rtc.forceSendrecv = true // a browser that sends although the SDK asked for recvonly
  const vic = await join('vic')
  const vicErrors = []
  vic.on('error', (e) => vicErrors.push(e))
  await until(() => vicErrors.length > 0, 'the refusal')
  assert.equal(vicErrors[0].code, 'forbidden-media')
  assert.ok(vicErrors[0] instanceof CallError)
  // The offer never reached Ada.
  assert.equal(ada.connection(vic.self).remoteDescription, null)
  assert.equal(ada.participants()[0].stream, null)
  assert.deepEqual(errors, [])
})

test('a non-publisher does not ask for media, receives only, and what it sends anyway is dropped', async () => {
  // A lax hub that relays a non-publisher's sendrecv offer: the SDK still drops what arrives.
  const { hub, rtc, join } = await setup({ checkMedia: false })
  const ada = await join('ada')
  const vic = await join('vic')
  assert.equal(vic.publish, false)
  assert.equal(vic.localStream, null)
  assert.deepEqual(vic.local, { audio: false, video: false, speaking: false })
  assert.deepEqual(rtc.mediaRequests, [{ audio: true, video: true }]) // Ada's only
  const asked = hub.frames('vic', 'call-join')[0]
  assert.deepEqual([asked.audio, asked.video], [true, true]) // asked; the hub records false for a viewer
  await until(() => hub.frames('vic', 'call-signal').some((f) => f.data.sdp !== undefined), 'vic\'s offer')
  const offer = hub.frames('vic', 'call-signal').find((f) => f.data.sdp !== undefined)
  assert.deepEqual(directions(offer.data.sdp.sdp), ['audio:recvonly', 'video:recvonly'])
  await until(() => kinds(vic.participants()[0]?.stream).length === 2, 'vic receives Ada')
  assert.deepEqual(ada.participants().map((p) => [p.user, p.publish, p.audio, p.video, p.stream]), [['vic', false, false, false, null]])
  // Muting does nothing for one with nothing to mute.
  vic.setMuted(true)
  assert.equal(hub.frames('vic', 'call-state').length, 0)

  rtc.forceSendrecv = true
  const bob = await join('bob')
  await until(() => bob.participants().length === 2 && bob.participants().find((p) => p.user === 'ada').stream !== null, 'bob meets ada')
  const vicOnBob = () => bob.participants().find((p) => p.user === 'vic')
  await until(() => rtc.connections.filter((pc) => pc.remoteDescription !== null).length >= 6, 'every description applied')
  assert.equal(vicOnBob().stream, null)
})

test('mute and camera toggle the tracks and send call-state; the others see it', async () => {
  const { hub, join } = await setup()
  const ada = await join('ada')
  const bob = await join('bob')
  const seen = []
  bob.on('participants', (list) => seen.push(list.map((p) => `${p.audio}/${p.video}`).join()))
  const local = []
  ada.on('local', (l) => local.push(l))
  ada.setMuted(true)
  assert.equal(ada.localStream.getAudioTracks()[0].enabled, false)
  await until(() => bob.participants()[0].audio === false, 'bob sees ada muted')
  assert.deepEqual(hub.frames('ada', 'call-state').at(-1), { type: 'call-state', room: ROOM, audio: false, video: true })
  ada.setCamera(false)
  assert.equal(ada.localStream.getVideoTracks()[0].enabled, false)
  await until(() => bob.participants()[0].video === false, 'bob sees ada\'s camera off')
  assert.deepEqual(hub.frames('ada', 'call-state').at(-1), { type: 'call-state', room: ROOM, audio: false, video: false })
  ada.setMuted(true) // no change: nothing sent
  assert.equal(hub.frames('ada', 'call-state').length, 2)
  ada.setMuted(false)
  await until(() => bob.participants()[0].audio === true, 'unmuted')
  assert.equal(hub.frames('ada', 'call-state').length, 3)
  assert.deepEqual(local.map((l) => [l.audio, l.video]), [[false, true], [false, false], [true, false]])
  assert.ok(seen.includes('false/true') && seen.includes('false/false'))
})

test('leave sends call-leave, closes everything and clears presence', async () => {
  const { hub, join } = await setup()
  const awareness = new Awareness(new Y.Doc())
  const presence = createPresence(awareness)
  after(() => awareness.destroy())
  const ada = await join('ada', { presence })
  const bob = await join('bob')
  assert.deepEqual(awareness.getLocalState().call, { room: ROOM, peer: ada.self, audio: true, video: true, speaking: false })
  ada.setMuted(true)
  assert.equal(awareness.getLocalState().call.audio, false)
  await until(() => ada.participants()[0]?.stream !== null && ada.participants().length === 1, 'ada meets bob')
  const pc = ada.connection(bob.self)
  const closed = []
  ada.on('closed', (e) => closed.push(e))
  await ada.leave()
  assert.deepEqual(hub.frames('ada').at(-1), { type: 'call-leave', room: ROOM })
  assert.equal(awareness.getLocalState().call, null)
  assert.ok(pc.closed)
  assert.ok(ada.localStream.getTracks().every((t) => t.readyState === 'ended'))
  assert.deepEqual(closed, [{ code: 1000, reason: 'left' }])
  assert.equal(ada.closed, true)
  await until(() => bob.participants().length === 0, 'bob sees ada leave')
  await ada.leave() // twice is harmless
  assert.equal(closed.length, 1)
})

test('call-peer-left closes that connection; a revoked socket (4403) ends the call', async () => {
  const { hub, join } = await setup()
  const awareness = new Awareness(new Y.Doc())
  after(() => awareness.destroy())
  const ada = await join('ada')
  const bob = await join('bob', { presence: createPresence(awareness) })
  await until(() => ada.participants()[0]?.stream !== null && ada.participants().length === 1, 'ada meets bob')
  const pc = ada.connection(bob.self)
  const lists = []
  ada.on('participants', (l) => lists.push(l.length))
  const closed = []
  bob.on('closed', (e) => closed.push(e))
  hub.close('bob', 4403, 'revoked')
  await until(() => closed.length === 1, 'bob\'s call to end')
  assert.deepEqual(closed, [{ code: 4403, reason: 'revoked' }])
  assert.ok(bob.localStream.getTracks().every((t) => t.readyState === 'ended'))
  assert.equal(awareness.getLocalState().call, null)
  await until(() => ada.participants().length === 0, 'ada to drop bob')
  assert.ok(pc.closed)
  assert.equal(ada.connection(bob.self), null)
  assert.deepEqual(lists, [0])
})

test('a 4401 (token expired) rejoins with a fresh token and a new peer id', async () => {
  const { hub, join } = await setup()
  const ada = await join('ada')
  const bob = await join('bob')
  const first = bob.self
  bob.setMuted(true)
  await until(() => ada.participants()[0]?.audio === false, 'ada sees bob muted')
  hub.close('bob', 4401, 'token expired')
  await until(() => bob.self !== first && bob.participants().length === 1 && kinds(bob.participants()[0].stream).length === 2, 'bob back in the call')
  assert.deepEqual(bob.reasons, ['initial', 'expired'])
  assert.equal(bob.closed, false)
  await until(() => ada.participants().map((p) => p.peer).join() === String(bob.self) && ada.participants()[0].stream !== null, 'ada meets the new bob')
  // Bob re-joined as he was: muted, camera on.
  assert.deepEqual(hub.frames('bob', 'call-join').map((f) => [f.audio, f.video]), [[true, true], [false, true]])
  assert.deepEqual([ada.participants()[0].audio, ada.participants()[0].video], [false, true])
  assert.equal(bob.localStream.getAudioTracks()[0].enabled, false)
})

/** TURN servers with a new credential per request: `turn-1`, `turn-2`, … */
function freshTurn () {
  let n = 0
  return () => [{ urls: ['stun:stun.test:3478'] }, { urls: ['turn:turn.test:3478'], username: `exp:${++n}`, credential: `turn-${n}` }]
}
const credentialOf = (config) => config.iceServers.find((s) => s.credential !== undefined)?.credential
const sdpsOf = (hub, who, type) => hub.frames(who, 'call-signal').filter((f) => f.data.sdp?.type === type)
const ufragOf = (f) => /a=ice-ufrag:(\S+)/.exec(f.data.sdp.sdp)[1]
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

test('TURN credentials: fresh ones before expiry, given to every connection, then an ICE restart that the other side answers', async () => {
  const { hub, join } = await setup({ iceServers: freshTurn(), iceTtl: 0.6 })
  const ada = await join('ada')
  const bob = await join('bob') // the newcomer: he offered
  const errors = []
  for (const c of [ada, bob]) c.on('error', (e) => errors.push(e))
  await until(() => kinds(ada.participants()[0]?.stream).length === 2, 'ada receives bob')
  const toAda = bob.connection(ada.self)
  const toBob = ada.connection(bob.self)
  assert.equal(credentialOf(toAda.initialConfig), 'turn-2')
  assert.equal(credentialOf(toBob.initialConfig), 'turn-1')
  const bobRequests = () => hub.iceRequests.filter((r) => r.authorization === 'Bearer tok-bob')
  await until(() => bobRequests().length === 2 && toAda.configurations.length === 1, 'bob\'s refresh')
  // Fetched with a fresh token (reason refresh), at 80% of a lifetime too short for the 30 s margin: halfway.
  assert.deepEqual(bob.reasons, ['initial', 'refresh'])
  const [first, second] = bobRequests()
  assert.ok(second.at - first.at >= 250 && second.at - first.at < 600, `refreshed after ${second.at - first.at} ms of 600`)
  // The connection's other settings kept, the new servers in.
  assert.equal(toAda.configurations[0].bundlePolicy, 'max-bundle')
  assert.match(credentialOf(toAda.configurations[0]), /^turn-[34]$/) // bob's and ada's refreshes come close together
  // Bob restarted ICE: a second offer with iceRestart and a new ufrag, and Ada answered it.
  await until(() => sdpsOf(hub, 'bob', 'offer').length >= 2 && toAda.signalingState === 'stable' && toAda.iceConnectionState === 'connected', 'bob\'s restart answered')
  assert.deepEqual(toAda.offerOptions.slice(0, 2), [undefined, { iceRestart: true }])
  const offers = sdpsOf(hub, 'bob', 'offer')
  assert.notEqual(ufragOf(offers[1]), ufragOf(offers[0]))
  assert.equal(offers[1].to, ada.self)
  // Ada refreshed hers too, and the restart of her side went through (answered, or taken over by Bob's).
  await until(() => toBob.configurations.length >= 1 && toBob.offerOptions.some((o) => o?.iceRestart === true), 'ada\'s refresh')
  await until(() => toBob.signalingState === 'stable' && toBob.iceConnectionState === 'connected', 'ada stable')
  assert.ok(ada.reasons.includes('refresh'))
  // The same transceivers, the streams unchanged, no errors.
  assert.equal(toBob.getTransceivers().length, 2)
  assert.deepEqual(kinds(ada.participants()[0].stream), ['audio', 'video'])
  assert.deepEqual(errors, [])
  // A connection made after a refresh starts with the fresh servers.
  const cy = await join('cy')
  await until(() => ada.connection(cy.self) !== null, 'ada meets cy')
  assert.notEqual(credentialOf(ada.connection(cy.self).initialConfig), 'turn-1')
  await Promise.all([ada.leave(), bob.leave(), cy.leave()])
})

test('no refresh for static iceServers, nor for a fetched list without credentials', async () => {
  const { hub, rtc, join } = await setup({ iceServers: [{ urls: ['stun:stun.test:3478'] }], iceTtl: 0.2 })
  const ada = await join('ada', { iceServers: [{ urls: ['turn:turn.static:3478'], username: 'u', credential: 'c' }] })
  const bob = await join('bob') // fetches STUN only
  await until(() => ada.participants().length === 1 && bob.participants().length === 1, 'met')
  await sleep(400)
  assert.equal(hub.iceRequests.length, 1) // bob's, once
  assert.deepEqual([ada.reasons, bob.reasons], [['initial'], ['initial']])
  for (const pc of rtc.connections) assert.deepEqual(pc.configurations, [])
  assert.equal(sdpsOf(hub, 'bob', 'offer').length, 1)
  assert.equal(sdpsOf(hub, 'ada', 'offer').length, 0)
  await Promise.all([ada.leave(), bob.leave()])
})

test('leave() stops the refresh: no timer left, a fetch under way is dropped', async () => {
  const { hub, join } = await setup({ iceServers: freshTurn(), iceTtl: 0.3 })
  const ada = await join('ada')
  await ada.leave()
  await sleep(400)
  assert.equal(hub.iceRequests.length, 1)
  // A token asked for a refresh that arrives after leave(): nothing is fetched or applied.
  let release
  const held = new Promise((resolve) => { release = resolve })
  const bob = await join('bob', { getToken: ({ reason }) => reason === 'refresh' ? held.then(() => 'tok-bob') : 'tok-bob' })
  const cy = await join('cy')
  await until(() => bob.participants().length === 1, 'bob meets cy')
  await sleep(250) // bob's refresh is waiting for its token
  const pc = bob.connection(cy.self)
  await bob.leave()
  const requests = hub.iceRequests.filter((r) => r.authorization === 'Bearer tok-bob').length
  release()
  await sleep(100)
  assert.equal(hub.iceRequests.filter((r) => r.authorization === 'Bearer tok-bob').length, requests)
  assert.deepEqual(pc.configurations, [])
  await cy.leave()
})

test('a refresh that fails is reported and tried again before expiry', async () => {
  const { hub, join } = await setup({ iceServers: freshTurn(), iceTtl: 1.2 })
  const ada = await join('ada')
  const bob = await join('bob')
  const errors = []
  bob.on('error', (e) => errors.push(e))
  await until(() => bob.participants().length === 1, 'met')
  hub.ice.failNext = 2 // the next refresh of each (ada's and bob's)
  const pc = bob.connection(ada.self)
  await until(() => errors.length === 1, 'the failure', 2000)
  assert.equal(errors[0].code, 'ice-servers')
  assert.deepEqual(pc.configurations, [])
  await until(() => pc.configurations.length === 1, 'the retry', 2000)
  assert.deepEqual(bob.reasons, ['initial', 'refresh', 'refresh'])
  await Promise.all([ada.leave(), bob.leave()])
})

test('ICE failed: the newcomer restarts once through the hub; when that fails too, connection-failed', async () => {
  const { hub, rtc, join } = await setup()
  const ada = await join('ada')
  const bob = await join('bob')
  const errors = []
  for (const c of [ada, bob]) c.on('error', (e) => errors.push(e))
  const toAda = bob.connection(ada.self)
  await until(() => toAda.iceConnectionState === 'connected' && ada.connection(bob.self).iceConnectionState === 'connected', 'connected')
  toAda.fail()
  await until(() => sdpsOf(hub, 'ada', 'answer').length === 2 && toAda.iceConnectionState === 'connected', 'the restart answered')
  const offers = sdpsOf(hub, 'bob', 'offer')
  assert.equal(offers.length, 2)
  assert.notEqual(ufragOf(offers[1]), ufragOf(offers[0]))
  assert.deepEqual(errors, [])

  // Another call whose restart does not help: one restart, then the error.
  const cy = await join('cy') // offers to both
  cy.on('error', (e) => errors.push(e))
  await until(() => cy.participants().length === 2 && cy.connection(ada.self).iceConnectionState === 'connected', 'cy connected')
  rtc.iceWorks = false
  cy.connection(ada.self).fail()
  await until(() => errors.length === 1, 'the report')
  assert.equal(errors[0].code, 'connection-failed')
  assert.equal(errors[0].peer, ada.self)
  await sleep(50)
  assert.equal(sdpsOf(hub, 'cy', 'offer').filter((f) => f.to === ada.self).length, 2)
  assert.equal(errors.length, 1) // Ada, the answerer, waits for a restart that will not come (15 s)
  rtc.iceWorks = true
  await Promise.all([ada.leave(), bob.leave(), cy.leave()])
})

test('keep-alive: the exact ping text, answered by the runtime', async () => {
  const { hub, join } = await setup()
  await join('ada', { keepAliveMs: 20 })
  await until(() => hub.raw('ada').filter((t) => t === '{"type":"ping"}').length >= 2, 'pings')
})

test('speaking: remote from inbound-rtp, local from media-source into presence, with hysteresis', async () => {
  const { hub, rtc, join } = await setup()
  let level = 0
  rtc.stats = () => new Map([
    ['s', { type: 'media-source', kind: 'audio', audioLevel: level }],
    ['v', { type: 'media-source', kind: 'video' }],
    ['i', { type: 'inbound-rtp', kind: 'audio', audioLevel: level }]
  ])
  const awareness = new Awareness(new Y.Doc())
  after(() => awareness.destroy())
  const ada = await join('ada', { presence: createPresence(awareness), speaking: { holdMs: 40 } })
  const bob = await join('bob', { speaking: { holdMs: 40 } })
  await until(() => ada.participants().length === 1, 'ada meets bob')
  level = 0.3
  await until(() => bob.participants()[0].speaking && ada.local.speaking && awareness.getLocalState().call.speaking, 'speaking seen')
  level = 0.02 // between the thresholds: still speaking
  await new Promise((resolve) => setTimeout(resolve, 100))
  assert.equal(bob.participants()[0].speaking, true)
  level = 0
  await until(() => !bob.participants()[0].speaking && !awareness.getLocalState().call.speaking, 'silence seen')
  level = 0.3
  ada.setMuted(true) // a muted microphone is not speaking, whatever the level
  await until(() => !bob.participants()[0].audio, 'bob sees the mute')
  await new Promise((resolve) => setTimeout(resolve, 80))
  assert.equal(ada.local.speaking, false)
  assert.equal(bob.participants()[0].speaking, false)
  // Speaking is never sent over the socket.
  assert.ok(hub.raw('ada').every((t) => !t.includes('speaking')))
})

test('SpeakingDetector: on above `on`, held through `off`..`on`, off after the hold', () => {
  const d = new SpeakingDetector({ on: 0.1, off: 0.05, holdMs: 100 })
  assert.equal(d.update(0.06, 0), false)
  assert.equal(d.update(0.2, 10), true)
  assert.equal(d.update(0.06, 200), true) // above `off`: stays
  assert.equal(d.update(0.01, 250), true) // held
  assert.equal(d.update(0.01, 299), true)
  assert.equal(d.update(0.01, 300), false)
  assert.equal(d.update(0.06, 310), false) // below `on`: does not start
  d.update(0.5, 320)
  d.reset()
  assert.equal(d.speaking, false)
  assert.deepEqual(audioLevels(new Map([
    ['a', { type: 'inbound-rtp', kind: 'audio', audioLevel: 0.2 }],
    ['b', { type: 'inbound-rtp', kind: 'video' }],
    ['c', { type: 'media-source', kind: 'audio', audioLevel: 0.4 }]
  ])), { source: 0.4, inbound: 0.2 })
  assert.deepEqual(audioLevels(new Map()), { source: null, inbound: null })
})
