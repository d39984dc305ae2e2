// Request ids and structured log lines: every answer carries x-request-id (success, problem,
// static file, WebSocket upgrade), a problem body names the same id in request_id (a problem a
// room answered too), a hostile incoming id is never echoed, a valid one is, and the worker's
// http.request log line is one JSON object that names it (docs/operations.md).

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import http from 'node:http'
import { IS_REFERENCE, createProject, startServer, waitFor } from './server.mjs'
import { destroyAll, roomName, withToken } from './helpers.mjs'

const SKIP = IS_REFERENCE ? 'the reference server has no HTTP API' : false
// What the worker writes: patterns.ID in src/openapi/patterns.rs.
const ID = /^(?!\.+$)[A-Za-z0-9._-]{1,64}$/

let server

before(async () => {
  if (SKIP) return
  // TURN_SECRET without TURN_URLS: ice-servers answers 500 not-configured, a failure to log.
  // At --log-level info wrangler dev prints only console.warn and console.error; at `log` it
  // prints the worker's console.log (the info lines) too.
  server = await startServer({ vars: { TURN_SECRET: 'e2e-turn-secret' }, logLevel: 'log' })
}, { timeout: 150_000 })

after(async () => {
  destroyAll()
  if (server) await server.stop()
})

async function get (path, headers = {}) {
  const res = await fetch(`${server.url}${path}`, { headers, signal: AbortSignal.timeout(10_000) })
  const body = await res.text()
  return { status: res.status, id: res.headers.get('x-request-id'), type: res.headers.get('content-type'), body }
}

/** Asserts a problem answer whose body names the header's request id; returns the body. */
function problemWithId (res, status, what) {
  assert.equal(res.status, status, `${what}: ${res.body}`)
  assert.match(String(res.type), /^application\/problem\+json/, what)
  assert.match(String(res.id), ID, `${what}: x-request-id`)
  const json = JSON.parse(res.body)
  assert.equal(json.request_id, res.id, `${what}: request_id in ${res.body}`)
  return json
}

/**
 * The worker's JSON log lines. wrangler dev prints console.log as `[tandemx] {…}` and warnings
 * and errors as `▲ [WARNING] {…}` / `✘ [ERROR] {…}`, in colour.
 */
function logLines () {
  const out = []
  for (const raw of server.logs().split('\n')) {
    const line = raw.replace(/\x1b\[[0-9;]*m/g, '')
    const start = line.indexOf('{"time":')
    if (start < 0) continue
    try {
      out.push(JSON.parse(line.slice(start, line.lastIndexOf('}') + 1)))
    } catch {}
  }
  return out
}

/** Upgrades `url` with a plain request; resolves `{ status, headers }` of the 101 or the refusal. */
function upgrade (url) {
  const target = new URL(url.replace(/^ws/, 'http'))
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: target.hostname,
      port: target.port,
      path: target.pathname + target.search,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64')
      },
      timeout: 10_000
    })
    req.on('upgrade', (res, socket) => {
      socket.destroy()
      resolve({ status: res.statusCode, headers: res.headers })
    })
    req.on('response', (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers }))
    })
    req.on('timeout', () => req.destroy(new Error('upgrade timed out')))
    req.on('error', reject)
    req.end()
  })
}

test('a success, a static file, a 404 and a 401 all carry a request id; problems name it', { timeout: 60_000, skip: SKIP }, async () => {
  const health = await get('/health')
  assert.equal(health.status, 200)
  assert.match(String(health.id), ID, 'GET /health')

  const page = await get('/')
  assert.equal(page.status, 200)
  assert.match(String(page.type), /text\/html/, 'the demo app is served')
  assert.match(String(page.id), ID, 'a static file (the assets binding\'s response) carries one')

  const openapi = await get('/v1/openapi.json')
  assert.equal(openapi.status, 200)
  assert.match(String(openapi.id), ID, 'GET /v1/openapi.json')

  const missing = problemWithId(await get('/nope'), 404, 'unknown path')
  assert.equal(missing.error, 'not-found')
  const denied = problemWithId(await get('/v1/projects/prj_nobody'), 401, 'no credential')
  assert.equal(denied.error, 'missing-credential')
  const ids = new Set([health.id, page.id, openapi.id])
  assert.equal(ids.size, 3, 'each request has its own id')
})

test('a problem a room answered gets the request id too', { timeout: 60_000, skip: SKIP }, async () => {
  const { project, key } = await createProject(server, 'Request ids')
  const doc = roomName('ids')
  const auth = { authorization: `Bearer ${key}` }
  const made = await fetch(`${server.url}/v1/projects/${project}/documents`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ name: doc })
  })
  assert.equal(made.status, 201, await made.text())
  const res = await get(`/v1/projects/${project}/documents/${doc}/versions/999`, auth)
  const body = problemWithId(res, 404, 'a version the room does not have')
  assert.equal(body.detail, 'no version "999"', 'the room\'s own detail is kept')
})

test('WebSocket answers carry a request id: the 101 and a refusal', { timeout: 60_000, skip: SKIP }, async () => {
  const ok = await upgrade(withToken(`${server.wsUrl}/${roomName('ws-id')}`))
  assert.equal(ok.status, 101)
  assert.match(String(ok.headers['x-request-id']), ID, 'the 101 of a room connection')
  const signal = await upgrade(`${server.url}/signal?token=${encodeURIComponent(server.token)}`)
  assert.equal(signal.status, 101)
  assert.match(String(signal.headers['x-request-id']), ID, 'the 101 of a signalling connection')
  const refused = await upgrade(`${server.wsUrl}/${roomName('ws-id')}`)
  assert.equal(refused.status, 401, 'no token')
  assert.match(String(refused.headers['x-request-id']), ID, 'a refused upgrade')
})

test('a hostile incoming x-request-id is not echoed; a valid one is', { timeout: 60_000, skip: SKIP }, async () => {
  for (const hostile of ['has spaces', 'a'.repeat(200), 'semi;colon', '"quoted"', 'slash/es', '..', 'x'.repeat(65)]) {
    const res = await get('/nope', { 'x-request-id': hostile })
    const body = problemWithId(res, 404, `hostile ${JSON.stringify(hostile.slice(0, 20))}`)
    assert.notEqual(res.id, hostile)
    assert.ok(!server.logs().includes(hostile.length > 20 ? hostile : `"${hostile}"`), 'not in the logs either')
    assert.equal(body.request_id, res.id)
  }
  const mine = `e2e-${crypto.randomBytes(6).toString('hex')}.req_1`
  const res = await get('/nope', { 'x-request-id': mine })
  assert.equal(res.id, mine, 'a valid caller id is the request id (no cf-ray under wrangler dev)')
  assert.equal(JSON.parse(res.body).request_id, mine)
  const max = 'A'.repeat(64)
  assert.equal((await get('/health', { 'x-request-id': max })).id, max, '64 characters pass')
})

test('the worker logs one JSON http.request line per request, naming its id', { timeout: 60_000, skip: SKIP }, async () => {
  const mine = `e2e-log-${crypto.randomBytes(6).toString('hex')}`
  const res = await get('/v1/projects/prj_nobody', { 'x-request-id': mine })
  assert.equal(res.status, 401)
  const line = await waitFor(() => logLines().find((l) => l.request_id === mine), {
    timeout: 10_000,
    description: () => `a JSON log line with request_id ${mine} (output tail: ${server.logs().slice(-1500)})`
  })
  assert.equal(line.event, 'http.request')
  assert.equal(line.level, 'info')
  assert.equal(line.method, 'GET')
  assert.equal(line.route, 'GetProject', 'the route\'s name, not the path')
  assert.equal(line.project, 'prj_nobody')
  assert.equal(line.status, 401)
  assert.equal(line.problem, 'missing-credential')
  assert.equal(typeof line.duration_ms, 'number')
  assert.match(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  assert.ok(Math.abs(Date.parse(line.time) - Date.now()) < 60_000, `time ${line.time} is now`)
  assert.equal(logLines().filter((l) => l.request_id === mine).length, 1, 'one line per request')
  // A path no route has is logged without it.
  const stray = `e2e-stray-${crypto.randomBytes(4).toString('hex')}`
  await get(`/no/such/${stray}`, { 'x-request-id': stray })
  const strayLine = await waitFor(() => logLines().find((l) => l.request_id === stray))
  assert.equal(strayLine.route, 'none')
  assert.ok(!JSON.stringify(strayLine).includes('/no/such'), 'no path in the line')
})

test('a failed request is logged at error level with its cause', { timeout: 60_000, skip: SKIP }, async () => {
  const { project, key } = await createProject(server, 'Failing ICE')
  const mine = `e2e-fail-${crypto.randomBytes(6).toString('hex')}`
  const res = await get(`/v1/projects/${project}/ice-servers`, { authorization: `Bearer ${key}`, 'x-request-id': mine })
  const body = problemWithId(res, 500, 'TURN_SECRET without TURN_URLS')
  assert.equal(body.error, 'not-configured')
  assert.equal(res.id, mine)
  const line = await waitFor(() => logLines().find((l) => l.request_id === mine && l.event === 'http.request'))
  assert.equal(line.level, 'error')
  assert.equal(line.status, 500)
  assert.equal(line.route, 'IceServers')
  assert.equal(line.project, project)
  assert.equal(line.problem, 'not-configured')
  assert.match(line.cause, /not-configured: TURN/, `cause in ${JSON.stringify(line)}`)
  // The configuration error itself was logged as an event of its own.
  assert.ok(logLines().some((l) => l.event === 'config.invalid' && l.level === 'error'), 'config.invalid logged')
})
