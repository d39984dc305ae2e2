// y-webrtc signalling (`GET /signal`, docs/signalling.md) with raw `ws` clients: the reference
// server's protocol (subscribe, unsubscribe, publish with `clients`, ping/pong), topics limited
// to what the token covers and to its project, bad frames and floods answered or closed without
// touching the others on the hub, revocation, and pings that never wake a hibernating hub.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import { IS_REFERENCE, createProject, mintToken, sleep, startServer, waitFor } from './server.mjs'
import { next, roomName, roundTrip, signalSocket, tryUpgrade } from './helpers.mjs'

const SKIP = IS_REFERENCE && 'the reference y-websocket server has no /signal'
let server
const sockets = new Set()

before(async () => {
  if (!SKIP) server = await startServer()
}, { timeout: 150_000 })

after(async () => {
  for (const s of sockets) s.terminate()
  await server?.stop()
})

const mint = (project, key, body) => mintToken(server, { project, key }, body)

/** A signalling socket of this server (`signalSocket`, helpers.mjs). */
const signal = (token) => signalSocket(server.url, token, sockets)

const publishes = (ws, topic) => ws.frames.filter((f) => f.type === 'publish' && f.topic === topic)
const errors = (ws) => ws.frames.filter((f) => f.type === 'error')

let fixture
async function projectWithToken () {
  if (fixture) return fixture
  const { project, key } = await createProject(server, 'Signalling')
  const all = (await mint(project, key, { sub: 'ada', room: '*' })).token
  fixture = { project, key, all }
  return fixture
}

test('subscribe, publish to every subscriber with clients, ping/pong, unsubscribe', { skip: SKIP, timeout: 60_000 }, async () => {
  const { all } = await projectWithToken()
  const topic = roomName('sig')
  const [a, b, c] = await Promise.all([signal(all), signal(all), signal(all)])
  a.json({ type: 'subscribe', topics: [topic] })
  b.json({ type: 'subscribe', topics: [topic, `${topic}-other`] })
  await Promise.all([roundTrip(a), roundTrip(b)])

  // The publish frame reaches both subscribers, the sender too, with `clients` added and the
  // rest as sent (the data here as y-webrtc's password option sends it: base64 ciphertext).
  const data = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='
  a.send(`{"type":"publish","topic":"${topic}","data":"${data}"}`)
  for (const ws of [a, b]) {
    const got = await next(ws, (f) => f.type === 'publish')
    assert.deepEqual(got, { type: 'publish', topic, data, clients: 2 })
  }
  assert.ok(b.raw.includes(`{"type":"publish","topic":"${topic}","data":"${data}","clients":2}`), 'the bytes as sent, clients appended')
  // A connection that has not subscribed may publish (as with the reference server), and gets
  // nothing itself.
  c.json({ type: 'publish', topic, data: { type: 'announce', from: 'c' } })
  await next(a, (f) => f.data?.from === 'c')
  await roundTrip(c)
  assert.equal(publishes(c, topic).length, 0)

  b.json({ type: 'unsubscribe', topics: [topic] })
  await roundTrip(b)
  a.json({ type: 'publish', topic, data: 'after' })
  const after = await next(a, (f) => f.data === 'after')
  assert.equal(after.clients, 1)
  await roundTrip(b)
  assert.equal(publishes(b, topic).length, 2, 'nothing after unsubscribing')
  assert.deepEqual([a, b, c].flatMap(errors), [])
  for (const ws of [a, b, c]) ws.close()
})

test('topics are the rooms the token covers, in its project only', { skip: SKIP, timeout: 60_000 }, async () => {
  const { project, key, all } = await projectWithToken()
  const prefix = roomName('team')
  const mine = `${prefix}:board`
  const narrow = (await mint(project, key, { sub: 'bo', room: `${prefix}:*` })).token
  const other = await createProject(server, 'Another project')
  const foreign = (await mint(other.project, other.key, { sub: 'eve', room: '*' })).token
  const [a, n, e] = await Promise.all([signal(all), signal(narrow), signal(foreign)])

  a.json({ type: 'subscribe', topics: [mine, 'elsewhere'] })
  n.json({ type: 'subscribe', topics: [mine, 'elsewhere', 'not a room'] })
  e.json({ type: 'subscribe', topics: [mine] })
  await Promise.all([roundTrip(a), roundTrip(n), roundTrip(e)])
  assert.deepEqual(errors(n).map((f) => [f.error, f.topic]), [['forbidden-topic', 'elsewhere'], ['bad-topic', 'not a room']])
  assert.deepEqual(errors(e), [], 'another project has a topic of that name to itself')

  a.json({ type: 'publish', topic: mine, data: 'p1' })
  a.json({ type: 'publish', topic: 'elsewhere', data: 'p1-elsewhere' })
  const got = await next(n, (f) => f.data === 'p1')
  assert.equal(got.clients, 2, 'the other project\'s subscriber is not counted')
  n.json({ type: 'publish', topic: 'elsewhere', data: 'sneak' })
  const refused = await next(n, (f) => f.type === 'error' && f.topic === 'elsewhere' && errors(n).length === 3)
  assert.equal(refused.error, 'forbidden-topic')
  e.json({ type: 'publish', topic: mine, data: 'from-eve' })
  await next(e, (f) => f.data === 'from-eve')
  await Promise.all([roundTrip(a), roundTrip(n)])
  assert.deepEqual(publishes(e, mine), [{ type: 'publish', topic: mine, data: 'from-eve', clients: 1 }], 'eve hears only herself')
  assert.equal(publishes(n, 'elsewhere').length, 0)
  assert.ok(!a.frames.some((f) => f.data === 'from-eve' || f.data === 'sneak'))
  for (const ws of [a, n, e]) ws.close()
})

test('a bad token, or none, never reaches a hub; the token may come as a protocol entry', { skip: SKIP, timeout: 60_000 }, async () => {
  const { all } = await projectWithToken()
  const base = `${server.url}/signal`
  assert.equal((await tryUpgrade(base, 10_000, { addToken: false })).status, 401)
  assert.equal((await tryUpgrade(`${base}?token=a.b.c`, 10_000, { addToken: false })).status, 401)
  assert.equal((await fetch(`${base}?token=${all}`)).status, 426)
  const ws = new WebSocket(base.replace(/^http/, 'ws'), ['y-webrtc', all])
  sockets.add(ws)
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  assert.equal(ws.protocol, 'y-webrtc')
  ws.close()
})

test('malformed frames get error frames; oversize frames and floods close that connection only', { skip: SKIP, timeout: 60_000 }, async () => {
  const { all } = await projectWithToken()
  const topic = roomName('bad')
  const [bystander, bad, big, flood] = await Promise.all([signal(all), signal(all), signal(all), signal(all)])
  bystander.json({ type: 'subscribe', topics: [topic] })
  bad.json({ type: 'subscribe', topics: [topic] })
  await Promise.all([roundTrip(bystander), roundTrip(bad)])

  for (const frame of ['{not json', '[1,2]', '{"topics":[]}', '{"type":"subscribe","topics":"x"}', '{"type":"hello"}', '{"type":"publish","data":1}']) bad.send(frame)
  bad.send(Buffer.from([0xff, 0xfe]), { binary: true })
  await roundTrip(bad)
  assert.deepEqual(errors(bad).map((f) => f.error), ['bad-json', 'bad-json', 'bad-frame', 'bad-frame', 'unknown-type', 'bad-frame', 'bad-json'])
  assert.ok(errors(bad).every((f) => typeof f.message === 'string'))

  // Too many topics for one connection: with the one it holds, 64 are held; the next is refused.
  const topics = Array.from({ length: 63 }, (_, i) => `t${i}`)
  bad.json({ type: 'subscribe', topics })
  bad.json({ type: 'subscribe', topics: [`${topic}-one-more`] })
  await roundTrip(bad)
  assert.deepEqual(errors(bad).slice(7).map((f) => [f.error, f.topic]), [['too-many-topics', `${topic}-one-more`]])

  big.send(JSON.stringify({ type: 'publish', topic, data: 'x'.repeat(70_000) }))
  assert.equal((await big.closed).code, 1009)

  // A flood: far past the burst of 200 frames, as fast as the socket takes them.
  for (let i = 0; i < 400; i++) flood.json({ type: 'publish', topic, data: i })
  const closed = await flood.closed
  assert.equal(closed.code, 4429)
  assert.equal(closed.reason, 'rate limited')

  // The others on the hub carry on.
  const from = bystander.frames.length
  bad.json({ type: 'publish', topic, data: 'still here' })
  const got = await next(bystander, (f) => f.data === 'still here', from)
  assert.equal(got.clients, 2)
  // The burst of 200, plus what 20 frames/s refill while the 400 arrive.
  assert.ok(publishes(bystander, topic).length < 300, 'the flood stopped near its burst')
  for (const ws of [bystander, bad]) ws.close()
})

test('revoking the token closes its signalling sockets (4403)', { skip: SKIP, timeout: 60_000 }, async () => {
  const { project, key } = await projectWithToken()
  const minted = await mint(project, key, { sub: 'cy', room: '*' })
  const ws = await signal(minted.token)
  ws.json({ type: 'subscribe', topics: [roomName('rev')] })
  await roundTrip(ws)
  const res = await fetch(`${server.url}/v1/projects/${project}/tokens/${minted.id}`, {
    method: 'DELETE', headers: { authorization: `Bearer ${key}` }
  })
  assert.equal(res.status, 200)
  const closed = await ws.closed
  assert.deepEqual(closed, { code: 4403, reason: 'revoked' })
  assert.equal((await tryUpgrade(`${server.url}/signal?token=${minted.token}`, 10_000, { addToken: false })).status, 403)
})

// How this is measured: every SignalHub instance logs `signal hub started` once, when the
// runtime constructs it (a new hub, or one woken from hibernation). While only exact pings
// arrive the count must not move; a frame the runtime cannot answer (a ping with a space) must
// then wake the hub, which shows it had been evicted while the pings went on, and that the
// count does see wakes. A publish after that shows the subscriptions survived in the sockets'
// attachments.
test('idle clients\' pings are answered without waking the hub; subscriptions survive hibernation', { skip: SKIP, timeout: 150_000 }, async () => {
  // A server of its own: the count covers every hub of a server, and the sockets the earlier
  // tests closed may still wake theirs (their close events arrive seconds later).
  const main = server
  server = await startServer()
  try {
    await idleHub()
  } finally {
    await server.stop()
    server = main
  }
})

async function idleHub () {
  const { project, key } = await createProject(server, 'Hibernating hub')
  const token = (await mint(project, key, { sub: 'ada', room: '*' })).token
  const topic = roomName('idle')
  const [a, b] = await Promise.all([signal(token), signal(token)])
  a.json({ type: 'subscribe', topics: [topic] })
  b.json({ type: 'subscribe', topics: [topic] })
  await Promise.all([roundTrip(a), roundTrip(b)])
  const starts = () => server.logs().split('\n').filter((l) => l.includes('signal hub started')).length
  // wrangler prints an object's logs a moment after the event.
  await waitFor(() => starts() >= 1, { timeout: 10_000, description: 'the hub\'s first start in the log' })
  await sleep(1_000)
  const before = starts()

  const IDLE_MS = 40_000
  let pongs = 0
  const rtts = []
  const started = Date.now()
  while (Date.now() - started < IDLE_MS) {
    for (const ws of [a, b]) {
      const t0 = performance.now()
      await roundTrip(ws)
      rtts.push(performance.now() - t0)
      pongs++
    }
    await sleep(1_000)
  }
  assert.equal(starts(), before, `no hub instance started during ${pongs} pings`)

  const from = a.frames.length
  a.send('{ "type": "ping" }')
  await next(a, (f) => f.type === 'pong', from)
  await waitFor(() => starts() === before + 1, { timeout: 10_000, description: 'the non-exact ping to wake the evicted hub' })

  b.json({ type: 'publish', topic, data: 'after the wake' })
  const got = await next(a, (f) => f.data === 'after the wake')
  assert.equal(got.clients, 2, 'both subscriptions came back from the attachments')
  rtts.sort((x, y) => x - y)
  console.log(`# ${pongs} exact pings over ${IDLE_MS / 1000} s: 0 hub starts; auto-response round trip median ${rtts[rtts.length >> 1].toFixed(1)} ms, max ${rtts[rtts.length - 1].toFixed(1)} ms; a spaced ping then started 1 instance`)
  a.close()
  b.close()
}
