// HTTP surface: health check of every binding, and JSON errors for requests
// that are not valid room upgrades.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { IS_REFERENCE, startServer } from './server.mjs'
import { destroyAll, roomName, tryUpgrade } from './helpers.mjs'

const SKIP = IS_REFERENCE ? 'the reference server has no HTTP API' : false

let server

before(async () => {
  if (SKIP) return
  server = await startServer()
}, { timeout: 150_000 })

after(async () => {
  destroyAll()
  if (server) await server.stop()
})

/** Asserts a JSON response and returns the parsed body. */
function parseJson (status, headers, body, what) {
  const type = headers.get ? headers.get('content-type') : headers['content-type']
  assert.match(String(type), /application\/(problem\+)?json/, `${what}: content-type is JSON (got ${type})`)
  try {
    return JSON.parse(body)
  } catch {
    assert.fail(`${what}: body is not JSON (status ${status}): ${body.slice(0, 200)}`)
  }
}

async function get (path, init) {
  const res = await fetch(`${server.url}${path}`, { ...init, signal: AbortSignal.timeout(10_000) })
  const body = await res.text()
  return { status: res.status, headers: res.headers, body }
}

test('GET /health reports every binding ok', { timeout: 60_000, skip: SKIP }, async () => {
  const { status, headers, body } = await get('/health')
  assert.equal(status, 200)
  const json = parseJson(status, headers, body, '/health')
  assert.equal(json?.durable_object?.ok, true, `durable_object.ok in ${body}`)
  assert.equal(json?.d1?.ok, true, `d1.ok in ${body}`)
  assert.equal(json?.r2?.ok, true, `r2.ok in ${body}`)
})

test('GET /rooms/:room without Upgrade -> 426 JSON error', { timeout: 60_000, skip: SKIP }, async () => {
  const { status, headers, body } = await get(`/rooms/${roomName('plain')}`)
  assert.equal(status, 426, body)
  const json = parseJson(status, headers, body, '426')
  assert.equal(json.error, 'upgrade-required', `error field in ${body}`)
  assert.equal(json.status, 426, `problem status in ${body}`)
})

test('unknown path -> 404 JSON', { timeout: 60_000, skip: SKIP }, async () => {
  const { status, headers, body } = await get('/nope')
  assert.equal(status, 404, body)
  const json = parseJson(status, headers, body, '404')
  assert.equal(json.status, 404, `problem status in ${body}`)
  assert.equal(json.type, 'tag:tandemx,2026:not-found', `problem type in ${body}`)
})

test('invalid room names are refused with 400 JSON before upgrading', { timeout: 60_000, skip: SKIP }, async () => {
  const invalid = {
    'too long (300 chars)': 'r'.repeat(300),
    'contains a space': 'bad%20room'
  }
  for (const [what, name] of Object.entries(invalid)) {
    const res = await tryUpgrade(`${server.wsUrl}/${name}`)
    assert.equal(res.upgraded, false, `${what}: must not upgrade`)
    assert.equal(res.status, 400, `${what}: status (body ${res.body})`)
    const json = parseJson(res.status, res.headers, res.body, what)
    assert.equal(json.type, 'tag:tandemx,2026:invalid-room-name', `${what}: problem type in ${res.body}`)
  }
  // The same request shape with a valid name does upgrade.
  const ok = await tryUpgrade(`${server.wsUrl}/${roomName('valid')}`)
  assert.equal(ok.upgraded, true, `valid room name upgrades (got ${ok.status} ${ok.body})`)
})
