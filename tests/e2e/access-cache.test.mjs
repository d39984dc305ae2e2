// The worker keeps what D1 said about a room connection it let in for ACCESS_CACHE_SECONDS, so
// reconnects and a room's many joiners skip the database. A change made through the API holds
// at once; a change made behind this worker's back (another location's isolate, an operator)
// holds within that time; with 0, every connection reads D1.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { IS_REFERENCE, d1Execute, startServer, sleep } from './server.mjs'
import { destroyAll, openRaw, roomName, tryUpgrade } from './helpers.mjs'

const SKIP = IS_REFERENCE && 'the reference server has no identity'
// Long enough to change D1 from another process inside it (a wrangler command: ~1 s on a quiet
// machine, several while other test files run).
const TTL_SECONDS = 15

let cached
let uncached

async function api (server, method, path, { key, body } = {}) {
  const headers = { authorization: `Bearer ${key}` }
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers,
    body: body !== undefined ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10_000)
  })
  return { status: res.status, json: await res.json() }
}

/** A project with an editor key, and a room token that key minted. */
async function setUp (server) {
  const made = await api(server, 'POST', '/v1/projects', { key: server.adminSecret, body: { name: 'Access cache' } })
  assert.equal(made.status, 201, JSON.stringify(made.json))
  const p = made.json.project.id
  const owner = made.json.key.secret
  const key = (await api(server, 'POST', `/v1/projects/${p}/keys`, { key: owner, body: { name: 'k', role: 'editor' } })).json
  const room = roomName('cache')
  const minted = await api(server, 'POST', `/v1/projects/${p}/tokens`, { key: key.secret, body: { sub: 'u', room } })
  assert.equal(minted.status, 201, JSON.stringify(minted.json))
  return { p, owner, key, room, token: minted.json.token }
}

function upgrade (server, room, token) {
  return tryUpgrade(`${server.url}/rooms/${room}?token=${encodeURIComponent(token)}`, 10_000, { addToken: false })
}

async function refusedAs (server, room, token) {
  const res = await upgrade(server, room, token)
  return res.upgraded ? 'upgraded' : JSON.parse(res.body).error
}

before(async () => {
  if (SKIP) return
  ;[cached, uncached] = await Promise.all([
    startServer({ vars: { ACCESS_CACHE_SECONDS: String(TTL_SECONDS) } }),
    startServer({ vars: { ACCESS_CACHE_SECONDS: '0' } })
  ])
}, { timeout: 150_000 })

after(async () => {
  destroyAll()
  await Promise.all([cached?.stop(), uncached?.stop()])
})

/** Keeps `room` live with a socket of the owner's (a room going live reads D1 itself). */
async function holdOpen (server, p, owner, room) {
  const minted = await api(server, 'POST', `/v1/projects/${p}/tokens`, { key: owner, body: { sub: 'holder', room } })
  const sock = openRaw(`${server.wsUrl}/${room}?token=${encodeURIComponent(minted.json.token)}`)
  await sock.e2e.opened
  return sock
}

describe('room access cache', { skip: SKIP }, () => {
  test('a key revoked behind the worker\'s back stops new connections within ACCESS_CACHE_SECONDS', async () => {
    const { p, owner, key, room, token } = await setUp(cached)
    await holdOpen(cached, p, owner, room)
    const letIn = Date.now()
    assert.equal(await refusedAs(cached, room, token), 'upgraded')
    await d1Execute(cached, `UPDATE api_keys SET revoked_at = ${Date.now()} WHERE id = '${key.id}'`)
    const took = Date.now() - letIn
    assert.ok(took < TTL_SECONDS * 1000 - 2000, `changing D1 took ${took} ms: too slow to see the cache`)
    // The worker did not read D1 again: the connection it let in a moment ago is let in again.
    assert.equal(await refusedAs(cached, room, token), 'upgraded', 'served from the cache')
    // Writes that cannot refuse anyone (a document edit, a token minted) keep the cache.
    const edit = await api(cached, 'POST', `/v1/projects/${p}/documents/${room}/edits`, {
      key: owner, body: { ops: [{ op: 'text.insert', path: ['t'], index: 0, text: 'x' }] }
    })
    assert.equal(edit.status, 200, JSON.stringify(edit.json))
    assert.equal((await api(cached, 'POST', `/v1/projects/${p}/tokens`, { key: owner, body: { sub: 'v', room } })).status, 201)
    assert.equal(await refusedAs(cached, room, token), 'upgraded', 'still served from the cache after API writes')
    await sleep(letIn + TTL_SECONDS * 1000 + 200 - Date.now())
    assert.equal(await refusedAs(cached, room, token), 'revoked')
  })

  test('with ACCESS_CACHE_SECONDS=0 every connection reads D1', async () => {
    const { key, room, token } = await setUp(uncached)
    assert.equal(await refusedAs(uncached, room, token), 'upgraded')
    await d1Execute(uncached, `UPDATE api_keys SET revoked_at = ${Date.now()} WHERE id = '${key.id}'`)
    assert.equal(await refusedAs(uncached, room, token), 'revoked')
  })

  test('changes made through the API hold at once: revoking a key, deleting the document, the project', async () => {
    const { p, owner, key, room, token } = await setUp(cached)
    assert.equal(await refusedAs(cached, room, token), 'upgraded')
    assert.equal((await api(cached, 'DELETE', `/v1/projects/${p}/keys/${key.id}`, { key: owner })).status, 200)
    assert.equal(await refusedAs(cached, room, token), 'revoked')

    const ownerToken = (await api(cached, 'POST', `/v1/projects/${p}/tokens`, { key: owner, body: { sub: 'u', room } })).json.token
    assert.equal(await refusedAs(cached, room, ownerToken), 'upgraded')
    assert.equal((await api(cached, 'DELETE', `/v1/projects/${p}/documents/${room}`, { key: owner })).status, 200)
    assert.equal(await refusedAs(cached, room, ownerToken), 'document-deleted')

    const other = roomName('cache')
    const otherToken = (await api(cached, 'POST', `/v1/projects/${p}/tokens`, { key: owner, body: { sub: 'u', room: other } })).json.token
    assert.equal(await refusedAs(cached, other, otherToken), 'upgraded')
    assert.equal((await api(cached, 'DELETE', `/v1/projects/${p}`, { key: owner })).status, 200)
    assert.equal(await refusedAs(cached, other, otherToken), 'project-deleted')
  })
})
