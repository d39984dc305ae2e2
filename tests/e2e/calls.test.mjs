// Calls on `/signal` (docs/calls.md) with raw `ws` clients: joining lists the others and tells
// them, SDP and candidates go to one participant only, the project's participant limit, who may
// send media (checked in the SDP), rooms the token covers and projects kept apart, leaving on
// close; and `GET /ice-servers` with STUN only, with TURN REST credentials, and with a local
// server standing in for Cloudflare's TURN API.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import http from 'node:http'
import { IS_REFERENCE, createProject, mintToken, startServer } from './server.mjs'
import { next, roomName, roundTrip, signalSocket } from './helpers.mjs'

const SKIP = IS_REFERENCE && 'the reference y-websocket server has no calls'
let server
const sockets = new Set()

before(async () => {
  if (!SKIP) server = await startServer()
}, { timeout: 150_000 })

after(async () => {
  for (const s of sockets) s.terminate()
  await server?.stop()
})

/** A room token of `project` (for every room unless `body` names one), from server `srv`. */
const mint = async (srv, project, key, body) => (await mintToken(srv, { project, key }, { room: '*', ...body })).token

async function patchProject (project, key, body) {
  const res = await fetch(`${server.url}/v1/projects/${project}`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  return { status: res.status, body: await res.json() }
}

const signal = (token) => signalSocket(server.url, token, sockets)

/** Joins the call of `room` and waits for the answer (call-joined or an error). */
async function join (ws, room, media = { audio: true, video: true }) {
  const from = ws.frames.length
  ws.json({ type: 'call-join', room, ...media })
  return next(ws, (f) => (f.type === 'call-joined' || f.type === 'error') && f.room === room, from)
}

const SENDRECV = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendrecv\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=sendrecv\r\n'
const RECVONLY = SENDRECV.replaceAll('a=sendrecv', 'a=recvonly')
const offer = (room, to, sdp) => ({ type: 'call-signal', room, to, data: { sdp: { type: 'offer', sdp } } })
const signals = (ws) => ws.frames.filter((f) => f.type === 'call-signal')

test('joining lists the others, signals reach one participant, leaving tells the rest', { skip: SKIP, timeout: 60_000 }, async () => {
  const { project, key } = await createProject(server, 'Calls')
  const room = roomName('call')
  const [a, b, c] = await Promise.all(['ada', 'bo', 'cy'].map(async (sub) => signal(await mint(server, project, key, { sub }))))
  const ja = await join(a, room)
  assert.equal(ja.type, 'call-joined')
  assert.deepEqual(ja.participants, [])
  assert.equal(ja.publish, true)
  assert.equal(ja.limit, 8)
  const jb = await join(b, room, { audio: true, video: false })
  assert.deepEqual(jb.participants, [{ peer: ja.self, user: 'ada', role: 'editor', publish: true, audio: true, video: true }])
  const joined = await next(a, (f) => f.type === 'call-peer-joined')
  assert.deepEqual(joined.participant, { peer: jb.self, user: 'bo', role: 'editor', publish: true, audio: true, video: false })
  const jc = await join(c, room)
  assert.equal(jc.participants.length, 2)

  // An offer from b to a reaches a alone, with b's id as `from` and the data as sent.
  b.json(offer(room, ja.self, SENDRECV))
  const got = await next(a, (f) => f.type === 'call-signal')
  assert.deepEqual(got, { type: 'call-signal', room, from: jb.self, data: { sdp: { type: 'offer', sdp: SENDRECV } } })
  const candidate = { candidate: 'candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host', sdpMid: '0', sdpMLineIndex: 0 }
  a.json({ type: 'call-signal', room, to: jb.self, data: { candidate } })
  assert.deepEqual((await next(b, (f) => f.type === 'call-signal')).data, { candidate })
  await Promise.all([roundTrip(b), roundTrip(c)])
  assert.equal(signals(c).length, 0, 'the third participant saw neither')

  // Mute state goes to the others.
  a.json({ type: 'call-state', room, audio: false, video: true })
  for (const ws of [b, c]) {
    assert.deepEqual(await next(ws, (f) => f.type === 'call-peer-state'), { type: 'call-peer-state', room, peer: ja.self, audio: false, video: true })
  }
  // Someone who is not in the call, or a peer who is not in it.
  const [outsider] = await Promise.all([signal(await mint(server, project, key, { sub: 'dee' }))])
  outsider.json(offer(room, ja.self, SENDRECV))
  assert.equal((await next(outsider, (f) => f.type === 'error')).error, 'not-in-call')
  a.json(offer(room, 424242, SENDRECV))
  assert.equal((await next(a, (f) => f.type === 'error')).error, 'no-such-peer')

  // A leave and a closed socket both reach the others.
  c.json({ type: 'call-leave', room })
  assert.equal((await next(c, (f) => f.type === 'call-left')).room, room)
  for (const ws of [a, b]) assert.equal((await next(ws, (f) => f.type === 'call-peer-left')).peer, jc.self)
  b.close()
  const left = await next(a, (f) => f.type === 'call-peer-left' && f.peer === jb.self)
  assert.equal(left.room, room)
  for (const ws of [a, c, outsider]) ws.close()
})

test('malformed call frames get error frames; rooms outside the token and other projects stay apart', { skip: SKIP, timeout: 60_000 }, async () => {
  const { project, key } = await createProject(server, 'Calls apart')
  const prefix = roomName('team')
  const narrow = await signal(await mint(server, project, key, { sub: 'bo', room: `${prefix}:*` }))
  for (const [frame, code] of [
    [{ type: 'call-join', room: 'elsewhere' }, 'forbidden-room'],
    [{ type: 'call-join', room: 'not a room' }, 'bad-room'],
    [{ type: 'call-join' }, 'bad-frame'],
    [{ type: 'call-join', room: `${prefix}:x`, audio: 'yes' }, 'bad-frame'],
    [{ type: 'call-signal', room: `${prefix}:x`, to: 1, data: { sdp: 'v=0' } }, 'not-in-call'],
    [{ type: 'call-leave', room: `${prefix}:x` }, 'not-in-call']
  ]) {
    const from = narrow.frames.length
    narrow.json(frame)
    const err = await next(narrow, (f) => f.type === 'error', from)
    assert.equal(err.error, code, JSON.stringify(frame))
  }
  const joined = await join(narrow, `${prefix}:x`)
  for (const data of [{}, { sdp: { type: 'offer' } }, { candidate: { nested: { deep: [1] } } }, { sdp: { type: 'offer', sdp: 'v=0' }, candidate: null }]) {
    const from = narrow.frames.length
    narrow.json({ type: 'call-signal', room: `${prefix}:x`, to: joined.self, data })
    assert.equal((await next(narrow, (f) => f.type === 'error', from)).error, 'bad-frame', JSON.stringify(data))
  }
  // The same room name in another project is another call.
  const other = await createProject(server, 'Calls elsewhere')
  const eve = await signal(await mint(server, other.project, other.key, { sub: 'eve' }))
  const je = await join(eve, `${prefix}:x`)
  assert.deepEqual(je.participants, [], 'the other project\'s participant is not listed')
  await roundTrip(narrow)
  assert.equal(narrow.frames.filter((f) => f.type === 'call-peer-joined').length, 0)
  for (const ws of [narrow, eve]) ws.close()
})

test('the participant limit is the project\'s, and who may publish is enforced in the SDP', { skip: SKIP, timeout: 60_000 }, async () => {
  const { project, key } = await createProject(server, 'Call limits')
  const room = roomName('limit')
  for (const bad of [{ call_max_participants: 1 }, { call_max_participants: 9 }, { call_max_participants: 'x' }, { call_viewers_publish: 'yes' }]) {
    const res = await patchProject(project, key, bad)
    assert.equal(res.status, 400, JSON.stringify(bad))
    assert.equal(res.body.error, 'invalid-body')
  }
  let res = await patchProject(project, key, { call_max_participants: 2 })
  assert.equal(res.status, 200)
  assert.equal(res.body.call_max_participants, 2)
  assert.equal(res.body.call_viewers_publish, false)

  const editor = await signal(await mint(server, project, key, { sub: 'ed' }))
  const viewer = await signal(await mint(server, project, key, { sub: 'vi', role: 'viewer' }))
  const third = await signal(await mint(server, project, key, { sub: 'th' }))
  const je = await join(editor, room)
  const jv = await join(viewer, room)
  assert.equal(jv.publish, false)
  assert.equal(jv.audio, false, 'a viewer joins with microphone and camera off')
  assert.equal((await next(editor, (f) => f.type === 'call-peer-joined')).participant.publish, false)
  const full = await join(third, room)
  assert.equal(full.error, 'call-full')
  assert.equal(full.limit, 2)

  // The viewer may answer to receive, not offer to send.
  viewer.json(offer(room, je.self, SENDRECV))
  assert.equal((await next(viewer, (f) => f.type === 'error')).error, 'forbidden-media')
  viewer.json({ type: 'call-state', room, audio: true, video: false })
  await next(viewer, (f) => f.type === 'error' && viewer.frames.filter((g) => g.error === 'forbidden-media').length === 2)
  viewer.json(offer(room, je.self, RECVONLY))
  const delivered = await next(editor, (f) => f.type === 'call-signal')
  assert.equal(delivered.data.sdp.sdp, RECVONLY)
  assert.equal(signals(editor).length, 1, 'the refused offer never arrived')

  // Once the project lets viewers publish, a viewer's new connection may.
  res = await patchProject(project, key, { call_viewers_publish: true })
  assert.equal(res.body.call_viewers_publish, true)
  viewer.close()
  await next(editor, (f) => f.type === 'call-peer-left')
  const viewer2 = await signal(await mint(server, project, key, { sub: 'vi', role: 'viewer' }))
  const jv2 = await join(viewer2, room)
  assert.equal(jv2.publish, true)
  viewer2.json(offer(room, je.self, SENDRECV))
  await next(editor, (f) => f.type === 'call-signal' && signals(editor).length === 2)
  for (const ws of [editor, third, viewer2]) ws.close()
})

async function iceServers (srv, project, credential) {
  const res = await fetch(`${srv.url}/v1/projects/${project}/ice-servers`, {
    headers: credential ? { authorization: `Bearer ${credential}` } : {}
  })
  return { status: res.status, headers: res.headers, body: await res.json() }
}

test('ice-servers: STUN by default, for room tokens of the project only', { skip: SKIP, timeout: 60_000 }, async () => {
  const { project, key } = await createProject(server, 'ICE')
  const token = await mint(server, project, key, { sub: 'ada', role: 'viewer', room: 'one-room' })
  const res = await iceServers(server, project, token)
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.deepEqual(res.body.iceServers, [{ urls: ['stun:stun.cloudflare.com:3478'] }])
  assert.equal(res.body.ttl, 3600)
  assert.equal(res.headers.get('cache-control'), 'no-store')
  assert.equal((await iceServers(server, project, key)).status, 200, 'an API key may ask too')
  assert.equal((await iceServers(server, project, null)).status, 401)
  const other = await createProject(server, 'ICE elsewhere')
  assert.equal((await iceServers(server, other.project, token)).status, 404)
  const malformed = await iceServers(server, 'prj_%20x', token)
  assert.equal(malformed.status, 404, 'a malformed project id names no project')
  assert.equal(malformed.headers.get('content-type'), 'application/problem+json')
})

test('ice-servers: TURN REST credentials coturn accepts, and Cloudflare TURN credentials passed on', { skip: SKIP, timeout: 150_000 }, async () => {
  // A local server in place of Cloudflare's TURN API: it checks what the worker sends.
  const seen = []
  let failNext = false
  const cloudflare = http.createServer((req, res) => {
    let body = ''
    req.on('data', (d) => { body += d })
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, body: JSON.parse(body || 'null') })
      if (failNext) {
        failNext = false
        res.writeHead(500).end('{}')
        return
      }
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({
        iceServers: [{ urls: ['turn:turn.cloudflare.com:3478?transport=udp'], username: 'cf-user', credential: 'cf-secret' }]
      }))
    })
  })
  await new Promise((resolve) => cloudflare.listen(0, '127.0.0.1', resolve))
  const secret = crypto.randomBytes(16).toString('hex')
  const turn = await startServer({
    vars: {
      ICE_STUN_URLS: 'stun:stun.example.org:3478,stuns:stun.example.org:5349',
      TURN_URLS: 'turn:turn.example.org:3478?transport=udp',
      TURN_SECRET: secret,
      TURN_TTL_SECONDS: '600',
      CLOUDFLARE_TURN_KEY_ID: 'abc123',
      CLOUDFLARE_TURN_API_TOKEN: 'cf-api-token',
      CLOUDFLARE_TURN_API: `http://127.0.0.1:${cloudflare.address().port}/keys`
    }
  })
  try {
    const { project, key } = await createProject(turn, 'TURN')
    const token = await mint(turn, project, key, { sub: 'ada' })
    const before = Math.floor(Date.now() / 1000)
    const res = await iceServers(turn, project, token)
    assert.equal(res.status, 200, JSON.stringify(res.body))
    const [stun, rest, cf] = res.body.iceServers
    assert.deepEqual(stun, { urls: ['stun:stun.example.org:3478', 'stuns:stun.example.org:5349'] })
    assert.equal(res.body.ttl, 600)
    // username "<expiry>:<user>", credential base64(HMAC-SHA1(secret, username)): what a TURN
    // server with use-auth-secret recomputes.
    const [expiry, user] = rest.username.split(':')
    assert.equal(user, 'ada')
    assert.ok(Number(expiry) >= before + 600 && Number(expiry) <= before + 610, rest.username)
    assert.equal(rest.credential, crypto.createHmac('sha1', secret).update(rest.username).digest('base64'))
    assert.equal(res.body.expires_at, Number(expiry) * 1000)
    assert.deepEqual(cf, { urls: ['turn:turn.cloudflare.com:3478?transport=udp'], username: 'cf-user', credential: 'cf-secret' })
    assert.deepEqual(seen.at(-1), { method: 'POST', url: '/keys/abc123/credentials/generate-ice-servers', auth: 'Bearer cf-api-token', body: { ttl: 600 } })
    // When Cloudflare fails, the caller is told so.
    failNext = true
    const failed = await iceServers(turn, project, token)
    assert.equal(failed.status, 502)
    assert.equal(failed.body.error, 'turn-unavailable')
  } finally {
    await turn.stop()
    cloudflare.close()
  }
})

test('a member demoted below editor leaves the call (4403); one who keeps media keeps the call', { skip: SKIP, timeout: 60_000 }, async () => {
  const { project, key } = await createProject(server, 'Call roles')
  const room = roomName('roles')
  const member = (sub, role) => fetch(`${server.url}/v1/projects/${project}/members/${sub}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ role })
  })
  for (const [sub, role] of [['ed', 'editor'], ['ow', 'owner']]) assert.equal((await member(sub, role)).status, 201)
  const ed = await signal(await mint(server, project, key, { sub: 'ed' }))
  const ow = await signal(await mint(server, project, key, { sub: 'ow', role: 'owner' }))
  const jed = await join(ed, room)
  const jow = await join(ow, room)
  assert.equal((await member('ow', 'editor')).status, 200)
  assert.equal((await member('ed', 'viewer')).status, 200)
  assert.deepEqual(await ed.closed, { code: 4403, reason: 'revoked' })
  assert.equal((await next(ow, (f) => f.type === 'call-peer-left')).peer, jed.self)
  // The demoted owner is still in the call, listed with its new role.
  const late = await signal(await mint(server, project, key, { sub: 'late' }))
  const jl = await join(late, room)
  assert.deepEqual(jl.participants.map((p) => [p.peer, p.role, p.publish]), [[jow.self, 'editor', true]])
  for (const ws of [ow, late]) ws.close()
})

test('ice-servers answers are rate limited per caller with token mints (429, Retry-After)', { skip: SKIP, timeout: 120_000 }, async () => {
  const { project, key } = await createProject(server, 'ICE limits')
  const token = await mint(server, project, key, { sub: 'greedy' })
  let limited = null
  // The limit counts per fixed minute: 601 calls within two minutes put 301 in one of them.
  for (let i = 0; i < 620 && !limited; i++) {
    const res = await iceServers(server, project, token)
    if (res.status === 429) limited = res
    else assert.equal(res.status, 200, JSON.stringify(res.body))
  }
  assert.ok(limited, 'a burst of ice-servers requests over the limit is refused')
  assert.equal(limited.body.error, 'rate-limited')
  assert.equal(limited.headers.get('retry-after'), '60')
  // Another caller is not affected.
  const other = await mint(server, project, key, { sub: 'patient' })
  assert.equal((await iceServers(server, project, other)).status, 200)
})
