import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TandemxApi, ApiError, httpBase, fetchDevToken, devTokenProvider, cacheTokens, PrepareError } from '../lib/index.js'

/** A fetch that records requests and answers from `respond(url, init)`. */
function fakeFetch (respond) {
  const calls = []
  const fn = async (url, init = {}) => {
    calls.push({ url: String(url), method: init.method, headers: init.headers, body: init.body === undefined ? undefined : JSON.parse(init.body) })
    const [status, body, type = 'application/json'] = respond(String(url), init)
    return new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { 'content-type': type } })
  }
  fn.calls = calls
  return fn
}

test('httpBase turns any server URL into its http(s) base', () => {
  assert.equal(httpBase('ws://127.0.0.1:8787/rooms'), 'http://127.0.0.1:8787')
  assert.equal(httpBase('wss://h.example/'), 'https://h.example')
  assert.equal(httpBase('https://h.example/base/'), 'https://h.example/base')
})

test('routes, methods, bodies and the bearer key', async () => {
  const fetch = fakeFetch((url, init) => init.method === 'DELETE' ? [204] : [200, { ok: true }])
  const api = new TandemxApi({ baseUrl: 'http://h:1', apiKey: 'tx_secret', fetch })
  await api.projects.create({ name: 'Demo' })
  await api.members.put('p 1', 'ada@x', { role: 'editor' })
  await api.keys.create('p1', { name: 'ci', role: 'editor' })
  await api.keys.revoke('p1', 'k1')
  await api.documents.list('p1')
  await api.documents.edit('p1', 'board', [{ op: 'map.set', path: ['nodes'], key: 'a', value: 1 }])
  const minted = await api.tokens.create('p1', { sub: 'u1', room: 'board', role: 'viewer', name: 'Ada', color: '#fff', ttl_seconds: 60 })
  assert.deepEqual(minted, { ok: true })
  assert.deepEqual(fetch.calls.map((c) => `${c.method} ${c.url}`), [
    'POST http://h:1/v1/projects',
    'PUT http://h:1/v1/projects/p%201/members/ada%40x',
    'POST http://h:1/v1/projects/p1/keys',
    'DELETE http://h:1/v1/projects/p1/keys/k1',
    'GET http://h:1/v1/projects/p1/documents',
    'POST http://h:1/v1/projects/p1/documents/board/edits',
    'POST http://h:1/v1/projects/p1/tokens'
  ])
  assert.equal(fetch.calls[0].headers.authorization, 'Bearer tx_secret')
  assert.deepEqual(fetch.calls[5].body, { ops: [{ op: 'map.set', path: ['nodes'], key: 'a', value: 1 }] })
  assert.deepEqual(fetch.calls[6].body, { sub: 'u1', room: 'board', role: 'viewer', name: 'Ada', color: '#fff', ttl_seconds: 60 })
})

test('problem details become ApiError with the problem attached', async () => {
  const problem = { type: 'https://tandemx.dev/problems/forbidden', title: 'Forbidden', status: 403, detail: 'requires the owner role', error: 'forbidden' }
  const api = new TandemxApi({ baseUrl: 'http://h', fetch: fakeFetch(() => [403, problem, 'application/problem+json']) })
  await assert.rejects(api.projects.get('p1'), (err) => {
    assert.ok(err instanceof ApiError)
    assert.equal(err.status, 403)
    assert.equal(err.code, 'forbidden')
    assert.deepEqual(err.problem, problem)
    assert.match(err.message, /GET \/v1\/projects\/p1 -> 403: requires the owner role/)
    return true
  })
  const down = new TandemxApi({ baseUrl: 'http://h', fetch: async () => { throw new TypeError('fetch failed') } })
  await assert.rejects(down.projects.get('p1'), (err) => err instanceof ApiError && err.status === 0 && err.problem === null)
})

test('binary document updates: state vector as base64 query, problems still thrown', async () => {
  const fetch = async (url, init = {}) => {
    fetch.calls.push({ url: String(url), method: init.method, type: init.headers['content-type'], body: init.body })
    if (init.method === 'GET') return new Response(new Uint8Array([1, 2, 3]), { status: 200 })
    if (String(url).includes('/nope/')) return new Response(JSON.stringify({ type: 't', title: 'Not Found', status: 404, detail: 'no such document', error: 'not-found' }), { status: 404 })
    return new Response(JSON.stringify({ changed: true, bytes: 3 }), { status: 200 })
  }
  fetch.calls = []
  const api = new TandemxApi({ baseUrl: 'http://h', apiKey: 'k', fetch })
  assert.deepEqual(await api.documents.getUpdate('p', 'd', new Uint8Array([0, 255])), new Uint8Array([1, 2, 3]))
  assert.equal(fetch.calls[0].url, 'http://h/v1/projects/p/documents/d/update?state_vector=AP8%3D')
  assert.deepEqual(await api.documents.applyUpdate('p', 'd', new Uint8Array([9])), { changed: true, bytes: 3 })
  assert.equal(fetch.calls[1].type, 'application/octet-stream')
  await assert.rejects(api.documents.applyUpdate('p', 'nope', new Uint8Array([9])), (err) => err instanceof ApiError && err.code === 'not-found')
})

test('fetchDevToken: 201 gives the token, 404 gives null', async () => {
  const ok = fakeFetch(() => [201, { token: 'jwt', expires_at: 123, room: 'r', role: 'editor' }])
  assert.deepEqual(await fetchDevToken('ws://h/rooms', { room: 'r', name: 'Ada', color: '#e4572e', role: 'editor' }, ok),
    { token: 'jwt', expires_at: 123, room: 'r', role: 'editor' })
  assert.equal(ok.calls[0].url, 'http://h/v1/dev/token')
  assert.deepEqual(ok.calls[0].body, { room: 'r', name: 'Ada', color: '#e4572e', role: 'editor' })
  assert.equal(await fetchDevToken('http://h', { room: 'r', name: 'a', color: '#000', role: 'viewer' },
    fakeFetch(() => [404, { type: 'about:blank', title: 'Not Found', status: 404, error: 'not-found' }])), null)
})

test('devTokenProvider: caches until near expiry, refreshes after 4401, stops on 403', async () => {
  let n = 0
  const now = Math.floor(Date.now() / 1000)
  const fetch = fakeFetch(() => [201, { token: `jwt${++n}`, expires_at: now + 3600, room: 'r', role: 'editor' }])
  const get = devTokenProvider({ baseUrl: 'http://h', name: 'Ada', color: '#e4572e', role: 'editor', fetch })
  assert.deepEqual(await get({ room: 'r', reason: 'initial', attempt: 1 }), { token: 'jwt1', expiresAt: now + 3600 })
  assert.equal((await get({ room: 'r', reason: 'reconnect', attempt: 2 })).token, 'jwt1')
  assert.equal((await get({ room: 'r', reason: 'expired', attempt: 3 })).token, 'jwt2')
  assert.equal((await get({ room: 'r', reason: 'rejected', attempt: 4 })).token, 'jwt3')

  const refused = devTokenProvider({ baseUrl: 'http://h', name: 'a', color: '#000', role: 'owner', fetch: fakeFetch(() => [403, { type: 'x', title: 'Forbidden', status: 403 }]) })
  await assert.rejects(refused({ room: 'r', reason: 'initial', attempt: 1 }), (err) => err instanceof PrepareError && err.code === 4403)
})

test('cacheTokens refreshes a token that is about to expire', async () => {
  let clock = 1000
  let n = 0
  const get = cacheTokens(() => ({ token: `t${++n}`, expiresAt: 1100 }), { refreshBeforeSeconds: 60, now: () => clock })
  assert.equal((await get({ room: 'r', reason: 'initial', attempt: 1 })).token, 't1')
  clock = 1030
  assert.equal((await get({ room: 'r', reason: 'reconnect', attempt: 2 })).token, 't1')
  assert.equal((await get({ room: 'r', reason: 'refresh', attempt: 2 })).token, 't1') // a call's TURN refresh
  clock = 1045
  assert.equal((await get({ room: 'r', reason: 'reconnect', attempt: 3 })).token, 't2')
  const plain = cacheTokens(() => `s${++n}`)
  assert.notEqual(await plain({ room: 'r', reason: 'initial', attempt: 1 }), await plain({ room: 'r', reason: 'reconnect', attempt: 2 }))
})

test('every request the typed client makes is an operation of docs/openapi.json', async () => {
  const { readFileSync } = await import('node:fs')
  const spec = JSON.parse(readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8'))
  const calls = []
  const fetch = async (url, init = {}) => {
    calls.push({ method: (init.method || 'GET').toLowerCase(), path: new URL(String(url)).pathname })
    return new Response(JSON.stringify({}), { status: 200, headers: { 'content-type': 'application/json' } })
  }
  const api = new TandemxApi({ baseUrl: 'http://h:1', apiKey: 'k', fetch })
  // Call every method of every group once, with placeholder arguments.
  const args = (fn) => Array.from({ length: fn.length }, (_, i) => (i === fn.length - 1 && fn.length > 1 ? {} : 'x'))
  let methods = 0
  for (const group of ['projects', 'members', 'keys', 'documents', 'history', 'tokens']) {
    for (const [name, fn] of Object.entries(api[group])) {
      methods++
      const a = args(fn)
      if (name === 'edit') a[2] = []
      if (name === 'applyUpdate') a[2] = new Uint8Array([0, 0])
      if (name === 'getUpdate') a[2] = new Uint8Array([0])
      if (['version', 'versionUpdate', 'deleteVersion', 'restore', 'diff', 'at'].includes(name)) a[2] = 1
      await fn(...a).catch(() => {})
    }
  }
  assert.equal(calls.length, methods, 'one request per method')
  const templates = Object.keys(spec.paths).map((t) => ({ t, re: new RegExp(`^${t.replace(/\{[^}]+\}/g, '[^/]+')}$`) }))
  for (const { method, path } of calls) {
    const match = templates.find(({ re }) => re.test(path))
    assert.ok(match, `${path} is not a path of the OpenAPI document`)
    assert.ok(spec.paths[match.t][method], `${method.toUpperCase()} ${match.t} is not an operation of the OpenAPI document`)
  }
})
