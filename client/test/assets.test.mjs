import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import {
  TandemxApi,
  ApiError,
  Sha256,
  assetUri,
  createAssetLinks,
  missingParts,
  parseAssetUri,
  partRange,
  planParts,
  sha256Hex
} from '../lib/index.js'

const MiB = 1024 * 1024
const ID = 'ast_0123456789abcdef0123'
const hex = (bytes) => createHash('sha256').update(bytes).digest('hex')

/** Bytes that differ from part to part. */
function bytesOf (size, seed = 1) {
  const out = new Uint8Array(size)
  let x = seed
  for (let i = 0; i < size; i++) { x = (x * 1103515245 + 12345) >>> 0; out[i] = x >>> 24 }
  return out
}

const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json' } })
const problem = (status, error, detail = error) => json(status, { type: 'about:blank', title: error, status, error, detail })

/**
 * An in-process stand-in for the asset routes (enough of src/edge/v1/uploads.rs): uploads in
 * one request and in parts, stored bytes kept so a test can compare them. `fail(req)` may
 * answer instead (a Response), throw (a network failure) or return nothing.
 */
function fakeAssets ({ fail = () => undefined, delayMs = 0 } = {}) {
  const uploads = new Map()
  const assets = new Map()
  const blobs = new Set()
  const log = []
  let seq = 0
  const record = (name, bytes, sha, type, tags, dedup) => {
    const id = `ast_${String(++seq).padStart(20, '0')}`
    const a = { id, name, content_type: type || 'application/octet-stream', size: bytes.length, sha256: sha, version: 1, uploader: 'u', created_at: Date.now(), updated_at: Date.now(), tags, licence: null, deleted_at: null, purge_at: null, used_by: 0, deduplicated: dedup }
    assets.set(id, { ...a, bytes })
    blobs.add(sha)
    return a
  }
  const fetch = async (input, init = {}) => {
    const url = new URL(String(input))
    const method = init.method ?? 'GET'
    const path = url.pathname.replace(/^\/v1\/projects\/p1/, '')
    const req = { method, path, url, init }
    log.push(`${method} ${path}`)
    if (init.signal?.aborted) throw init.signal.reason
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs))
    const failed = await fail(req)
    if (failed !== undefined) return failed
    const body = init.body instanceof Blob ? new Uint8Array(await init.body.arrayBuffer()) : init.body
    let m
    if (method === 'POST' && path === '/assets') {
      const sha = init.headers['tandemx-sha256']
      if (body.length > 8 * MiB) return problem(413, 'body-too-large')
      if (hex(body) !== sha) return problem(422, 'digest-mismatch')
      const tags = url.searchParams.get('tags')?.split(',') ?? []
      return json(201, record(url.searchParams.get('name'), body, sha, init.headers['content-type'], tags, blobs.has(sha)))
    }
    if (method === 'POST' && path === '/uploads') {
      const b = JSON.parse(body)
      if (blobs.has(b.sha256)) return json(201, { complete: true, upload: null, asset: record(b.name, new Uint8Array(b.size), b.sha256, b.content_type, b.tags ?? [], true) })
      const partSize = b.part_size ?? 8 * MiB
      const id = `upl_${String(++seq).padStart(20, '0')}`
      const up = { id, name: b.name, content_type: b.content_type ?? '', size: b.size, sha256: b.sha256, part_size: partSize, parts: Math.ceil(b.size / partSize), asset: b.asset ?? null, uploader: 'u', created_at: Date.now(), expires_at: Date.now() + 1e6, received: [], state: 'open', tags: b.tags ?? [], data: new Map() }
      uploads.set(id, up)
      return json(201, { complete: false, upload: view(up), asset: null })
    }
    if ((m = /^\/uploads\/(upl_\d+)$/.exec(path))) {
      const up = uploads.get(m[1])
      if (up === undefined) return problem(404, 'not-found')
      if (method === 'DELETE') { uploads.delete(m[1]); return json(200, { id: m[1], state: 'aborted' }) }
      return json(200, view(up))
    }
    if ((m = /^\/uploads\/(upl_\d+)\/parts\/(\d+)$/.exec(path)) && method === 'PUT') {
      const up = uploads.get(m[1])
      const n = Number(m[2])
      if (up === undefined || n > up.parts) return problem(404, 'not-found')
      const want = n < up.parts ? up.part_size : up.size - (up.parts - 1) * up.part_size
      if (body.length !== want) return problem(400, 'invalid-body')
      up.data.set(n, body)
      return json(200, { part_number: n, size: want })
    }
    if ((m = /^\/uploads\/(upl_\d+)\/complete$/.exec(path))) {
      const up = uploads.get(m[1])
      if (up === undefined) return problem(404, 'not-found')
      const missing = []
      for (let n = 1; n <= up.parts; n++) if (!up.data.has(n)) missing.push(n)
      if (missing.length > 0) return problem(409, 'conflict', `missing: ${missing.join(', ')}`)
      const all = Buffer.concat([...up.data.keys()].sort((a, b) => a - b).map((n) => up.data.get(n)))
      if (hex(all) !== up.sha256) return problem(422, 'digest-mismatch')
      uploads.delete(m[1])
      return json(201, record(up.name, all, up.sha256, up.content_type, up.tags, false))
    }
    if (method === 'GET' && path === '/assets') {
      const prefix = url.searchParams.get('prefix') ?? ''
      return json(200, { assets: [...assets.values()].filter((a) => a.name.startsWith(prefix)).map(({ bytes, ...a }) => a), next_cursor: null })
    }
    return problem(404, 'no-route')
  }
  const view = (up) => ({ ...up, received: [...up.data].map(([n, b]) => ({ part_number: n, size: b.length })).sort((a, b) => a.part_number - b.part_number), data: undefined, tags: undefined })
  return { fetch, log, uploads, assets, blobs }
}

/** Waits until `cond()` holds (or fails the test after 10 s). */
async function until (cond, ms = 10_000) {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

const apiWith = (fetch) => new TandemxApi({ baseUrl: 'http://h', apiKey: 'tok', fetch })
const online = { offline: () => false, online: async () => {} }

test('asset URIs: made and read back; anything else is not one', () => {
  assert.equal(assetUri(ID), `tandemx://asset/${ID}`)
  assert.equal(assetUri(ID, 3), `tandemx://asset/${ID}@3`)
  assert.deepEqual(parseAssetUri(`tandemx://asset/${ID}`), { id: ID })
  assert.deepEqual(parseAssetUri(`tandemx://asset/${ID}@12`), { id: ID, version: 12 })
  for (const bad of [`tandemx://asset/${ID}@0`, `tandemx://asset/${ID}@`, `tandemx://asset/${ID}@1x`, `https://asset/${ID}`,
    `tandemx://asset/ast_XYZ`, `tandemx://asset/${ID}/x`, ` tandemx://asset/${ID}`, '']) {
    assert.equal(parseAssetUri(bad), null, bad)
  }
  assert.throws(() => assetUri('ast_nope'), RangeError)
  assert.throws(() => assetUri(ID, 0), RangeError)
})

test('part plans follow the server: 8 MiB by default, at most 10000 parts, the last the rest', () => {
  assert.deepEqual(planParts(20 * MiB), { partSize: 8 * MiB, parts: 3 })
  assert.deepEqual(planParts(20 * MiB, 5 * MiB), { partSize: 5 * MiB, parts: 4 })
  assert.deepEqual(planParts(1), { partSize: 8 * MiB, parts: 1 })
  assert.equal(planParts(100_000 * MiB).parts <= 10_000, true)
  assert.throws(() => planParts(10 * MiB, MiB), RangeError)
  assert.throws(() => planParts(0), RangeError)
  assert.deepEqual(partRange(1, 5, 12), { start: 0, end: 5 })
  assert.deepEqual(partRange(3, 5, 12), { start: 10, end: 12 })
  assert.throws(() => partRange(4, 5, 12), RangeError)
  assert.deepEqual(missingParts({ parts: 5, received: [{ part_number: 2, size: 1 }, { part_number: 4, size: 1 }] }), [1, 3, 5])
  assert.deepEqual(missingParts({ parts: 2, received: [{ part_number: 1, size: 1 }, { part_number: 2, size: 1 }] }), [])
})

test('the incremental SHA-256 agrees with node:crypto, whatever the pieces', async () => {
  for (const size of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 100_003]) {
    const bytes = bytesOf(size, size + 7)
    const whole = Buffer.from(new Sha256().update(bytes).digest()).toString('hex')
    assert.equal(whole, hex(bytes), `size ${size}`)
    const h = new Sha256()
    for (let i = 0; i < size;) { const n = 1 + ((i * 31) % 97); h.update(bytes.subarray(i, i + n)); i += n }
    assert.equal(Buffer.from(h.digest()).toString('hex'), hex(bytes), `size ${size} in pieces`)
  }
  const blob = new Blob([bytesOf(9 * MiB + 5)])
  const seen = []
  const incremental = await sha256Hex(blob, { inMemoryLimit: 0, onProgress: (n) => seen.push(n) })
  assert.equal(incremental, await sha256Hex(blob))
  assert.equal(incremental, hex(new Uint8Array(await blob.arrayBuffer())))
  assert.deepEqual(seen, [4 * MiB, 8 * MiB, 9 * MiB + 5])
})

test('a small file goes in one request with its digest, type, name and tags', async () => {
  const server = fakeAssets()
  const api = apiWith(server.fetch)
  const bytes = bytesOf(1000)
  const progress = []
  const asset = await api.assets.upload('p1', new Blob([bytes], { type: 'image/png' }), { name: 'dot.png', tags: ['a', 'b'], onProgress: (p) => progress.push(p), network: online })
  assert.equal(asset.name, 'dot.png')
  assert.equal(asset.sha256, hex(bytes))
  assert.deepEqual(asset.tags, ['a', 'b'])
  assert.equal(asset.content_type, 'image/png')
  assert.deepEqual(server.log, ['POST /assets'])
  assert.deepEqual(progress.map((p) => p.phase), ['hashing', 'uploading', 'done'])
  assert.deepEqual(progress.at(-1), { phase: 'done', loaded: 1000, total: 1000 })
})

test('a large file goes in parts, several at a time, with progress, byte for byte', async () => {
  let inFlight = 0
  let most = 0
  const server = fakeAssets({
    fail: async ({ method }) => {
      if (method !== 'PUT') return
      inFlight++
      most = Math.max(most, inFlight)
      await new Promise((resolve) => setTimeout(resolve, 20))
      inFlight--
    }
  })
  const api = apiWith(server.fetch)
  const bytes = bytesOf(17 * MiB + 3)
  const progress = []
  const started = []
  const asset = await api.assets.upload('p1', new Blob([bytes]), {
    name: 'big.bin', partSize: 5 * MiB, concurrency: 2, directLimit: MiB, onProgress: (p) => progress.push(p), onStart: (u) => started.push(u.id), network: online
  })
  assert.equal(asset.size, bytes.length)
  assert.ok(Buffer.compare(server.assets.get(asset.id).bytes, bytes) === 0, 'byte-exact')
  assert.equal(most, 2, 'two parts in flight at once')
  assert.equal(started.length, 1)
  assert.deepEqual(server.log.filter((l) => l.startsWith('PUT')).length, 4)
  const uploading = progress.filter((p) => p.phase === 'uploading').map((p) => p.loaded)
  assert.deepEqual(uploading, [...uploading].sort((a, b) => a - b), 'progress only grows')
  assert.deepEqual([...new Set(uploading)], [0, 5 * MiB, 10 * MiB, 15 * MiB, 17 * MiB + 3])
  assert.deepEqual(progress.at(-1), { phase: 'done', loaded: bytes.length, total: bytes.length })
})

test('known bytes: nothing is sent', async () => {
  const server = fakeAssets()
  const api = apiWith(server.fetch)
  const bytes = bytesOf(6 * MiB, 9)
  server.blobs.add(hex(bytes))
  const asset = await api.assets.upload('p1', new Blob([bytes]), { name: 'again', directLimit: MiB, network: online })
  assert.equal(asset.deduplicated, true)
  assert.deepEqual(server.log, ['POST /uploads'])
})

test('a failing part is retried with backoff; a refusal is not', async () => {
  let failures = 0
  const server = fakeAssets({
    fail: ({ method, path }) => {
      if (method === 'PUT' && path.endsWith('/parts/2') && failures < 3) {
        failures++
        if (failures === 2) throw new TypeError('fetch failed')
        return problem(503, 'unavailable')
      }
    }
  })
  const api = apiWith(server.fetch)
  const bytes = bytesOf(11 * MiB, 3)
  const asset = await api.assets.upload('p1', new Blob([bytes]), { partSize: 5 * MiB, directLimit: 0, retryDelayMs: 1, network: online })
  assert.equal(failures, 3)
  assert.ok(Buffer.compare(server.assets.get(asset.id).bytes, bytes) === 0)
  assert.equal(server.log.filter((l) => l.endsWith('/parts/2')).length, 4)

  // A 403 is final: thrown at once, the other parts stop, the upload stays (for a resume).
  const strict = fakeAssets({ fail: ({ method, path }) => (method === 'PUT' && path.endsWith('/parts/1') ? problem(403, 'forbidden') : undefined) })
  await assert.rejects(apiWith(strict.fetch).assets.upload('p1', new Blob([bytes]), { partSize: 5 * MiB, directLimit: 0, retryDelayMs: 1, network: online }),
    (err) => err instanceof ApiError && err.status === 403)
  assert.equal(strict.log.filter((l) => l.endsWith('/parts/1')).length, 1)
  assert.equal(strict.uploads.size, 1)
  assert.ok(!strict.log.includes('POST /uploads/upl_00000000000000000001/complete'))

  // Too many failures: the last one is thrown.
  const down = fakeAssets({ fail: ({ method }) => (method === 'PUT' ? problem(500, 'internal') : undefined) })
  await assert.rejects(apiWith(down.fetch).assets.upload('p1', new Blob([bytes]), { partSize: 5 * MiB, directLimit: 0, retries: 2, retryDelayMs: 1, concurrency: 1, network: online }),
    (err) => err instanceof ApiError && err.status === 500)
  assert.equal(down.log.filter((l) => l.endsWith('/parts/1')).length, 3)
})

test('offline: the upload waits for the network, then goes on', async () => {
  let offline = false
  let wake = () => {}
  const network = {
    offline: () => offline,
    online: (signal) => new Promise((resolve, reject) => { wake = resolve; signal?.addEventListener('abort', () => reject(signal.reason)) })
  }
  let sent = 0
  const server = fakeAssets({
    fail: ({ method }) => {
      if (method !== 'PUT') return
      sent++
      // The network goes away under the second part.
      if (sent === 2) { offline = true; throw new TypeError('Failed to fetch') }
    }
  })
  const api = apiWith(server.fetch)
  const bytes = bytesOf(12 * MiB, 4)
  const phases = []
  const done = api.assets.upload('p1', new Blob([bytes]), { partSize: 5 * MiB, directLimit: 0, concurrency: 1, retries: 0, network, onProgress: (p) => phases.push(p.phase) })
  await until(() => phases.at(-1) === 'offline')
  await new Promise((resolve) => setTimeout(resolve, 30))
  assert.equal(phases.at(-1), 'offline')
  assert.equal(sent, 2, 'nothing is sent while offline')
  offline = false
  wake()
  const asset = await done
  assert.ok(Buffer.compare(server.assets.get(asset.id).bytes, bytes) === 0)
  assert.ok(phases.includes('offline') && phases.at(-1) === 'done')
})

test('resumeUpload sends only the parts the server lacks', async () => {
  const server = fakeAssets()
  const api = apiWith(server.fetch)
  const bytes = bytesOf(16 * MiB, 5)
  const file = new Blob([bytes])
  const { upload } = await api.assets.uploads.create('p1', { name: 'r.bin', size: bytes.length, sha256: hex(bytes), part_size: 5 * MiB })
  for (const n of [1, 3]) await api.assets.uploads.putPart('p1', upload.id, n, file.slice((n - 1) * 5 * MiB, n * 5 * MiB))
  server.log.length = 0
  const progress = []
  const asset = await api.assets.resumeUpload('p1', upload.id, file, { network: online, onProgress: (p) => progress.push(p.loaded) })
  assert.deepEqual(server.log, [`GET /uploads/${upload.id}`, `PUT /uploads/${upload.id}/parts/2`, `PUT /uploads/${upload.id}/parts/4`, `POST /uploads/${upload.id}/complete`])
  assert.ok(Buffer.compare(server.assets.get(asset.id).bytes, bytes) === 0)
  assert.equal(progress[0], 10 * MiB, 'what was stored before counts')
  await assert.rejects(api.assets.resumeUpload('p1', 'upl_00000000000000000099', file, { network: online }), (err) => err.status === 404)
  const other = await api.assets.uploads.create('p1', { name: 'o', size: 100, sha256: hex(new Uint8Array(100)) })
  await assert.rejects(api.assets.resumeUpload('p1', other.upload.id, file, { network: online }), RangeError)
})

test('abort: the requests stop and the upload is dropped, unless kept', async () => {
  for (const keep of [false, true]) {
    const ac = new AbortController()
    let puts = 0
    const server = fakeAssets({ delayMs: 5, fail: ({ method }) => { if (method === 'PUT' && ++puts === 2) ac.abort() } })
    const api = apiWith(server.fetch)
    const bytes = bytesOf(16 * MiB, 6)
    await assert.rejects(api.assets.upload('p1', new Blob([bytes]), { partSize: 5 * MiB, directLimit: 0, concurrency: 1, signal: ac.signal, keepOnAbort: keep, network: online }),
      (err) => err.name === 'AbortError')
    assert.equal(server.log.filter((l) => l.startsWith('DELETE')).length, keep ? 0 : 1, `keep: ${keep}`)
    assert.equal(server.uploads.size, keep ? 1 : 0)
    assert.ok(!server.log.some((l) => l.endsWith('/complete')))
  }
})

test('a lost answer to complete: the asset is found by its digest', async () => {
  let dropped = false
  const server = fakeAssets()
  const fetch = async (url, init) => {
    const res = await server.fetch(url, init)
    if (!dropped && String(url).endsWith('/complete')) { dropped = true; throw new TypeError('network reset') }
    return res
  }
  const api = apiWith(fetch)
  const bytes = bytesOf(6 * MiB, 8)
  const asset = await api.assets.upload('p1', new Blob([bytes]), { name: 'lost.bin', partSize: 5 * MiB, directLimit: 0, retryDelayMs: 1, network: online })
  assert.equal(asset.sha256, hex(bytes))
  assert.equal(server.assets.size, 1)
})

test('a server that takes less in one request: the file goes in parts', async () => {
  const server = fakeAssets()
  const bytes = bytesOf(9 * MiB, 10)
  const asset = await apiWith(server.fetch).assets.upload('p1', new Blob([bytes]), { directLimit: 32 * MiB, partSize: 5 * MiB, network: online })
  assert.equal(server.log[0], 'POST /assets')
  assert.equal(server.log[1], 'POST /uploads')
  assert.ok(Buffer.compare(server.assets.get(asset.id).bytes, bytes) === 0)
})

test('library routes: paths, filters, cursor pages, links', async () => {
  const calls = []
  const pages = { '': { assets: [{ id: 'a' }, { id: 'b' }], next_cursor: 'c1' }, c1: { assets: [{ id: 'c' }], next_cursor: null } }
  const fetch = async (url, init = {}) => {
    const u = new URL(url)
    calls.push(`${init.method} ${u.pathname}${u.search}${init.body ? ` ${init.body}` : ''}`)
    if (u.pathname.endsWith('/assets') && init.method === 'GET') return json(200, pages[u.searchParams.get('cursor') ?? ''])
    return json(200, {})
  }
  const api = apiWith(fetch)
  await api.assets.list('p1', { content_type: 'image/*', tag: 'brand', trashed: false, limit: 10 })
  const ids = []
  for await (const a of api.assets.all('p1', { orphans: true })) ids.push(a.id)
  assert.deepEqual(ids, ['a', 'b', 'c'])
  await api.assets.update('p1', ID, { licence: { spdx: 'CC-BY-4.0' } })
  await api.assets.tag('p1', ID, 'a b')
  await api.assets.untag('p1', ID, 'x')
  await api.assets.delete('p1', ID, { force: true })
  await api.assets.restore('p1', ID)
  await api.assets.purge('p1', ID)
  await api.assets.usage('p1', ID)
  await api.assets.documentAssets('p1', 'board 1')
  await api.assets.storage('p1')
  await api.assets.signedUrl('p1', ID, { version: 2, preview: { w: 256 } })
  assert.deepEqual(calls, [
    'GET /v1/projects/p1/assets?content_type=image%2F*&tag=brand&trashed=false&limit=10',
    'GET /v1/projects/p1/assets?orphans=true',
    'GET /v1/projects/p1/assets?orphans=true&cursor=c1',
    `PATCH /v1/projects/p1/assets/${ID} {"licence":{"spdx":"CC-BY-4.0"}}`,
    `PUT /v1/projects/p1/assets/${ID}/tags/a%20b`,
    `DELETE /v1/projects/p1/assets/${ID}/tags/x`,
    `DELETE /v1/projects/p1/assets/${ID}?force=true`,
    `POST /v1/projects/p1/assets/${ID}/restore`,
    `POST /v1/projects/p1/assets/${ID}/purge`,
    `GET /v1/projects/p1/assets/${ID}/usage`,
    'GET /v1/projects/p1/documents/board%201/assets',
    'GET /v1/projects/p1/asset-usage',
    `POST /v1/projects/p1/assets/${ID}/links {"version":2,"preview":{"w":256,"format":"webp"}}`
  ])
})

test('asset links: one request per URI until the link nears its expiry', async () => {
  let now = 1_000_000
  const asked = []
  const routes = {
    signedUrl: async (p, id, o) => {
      asked.push({ p, id, ...o })
      if (id === 'ast_ffffffffffffffffffff') throw new ApiError(404, null, 'gone')
      return { url: `https://x/${id}/${asked.length}`, version: o.version ?? 1, expires_at: now + o.expiresIn * 1000 }
    }
  }
  const links = createAssetLinks(routes, async () => 'p1', { expiresIn: 600, now: () => now })
  const uri = assetUri(ID, 2)
  const [a, b] = await Promise.all([links.resolve(uri), links.resolve(uri)])
  assert.equal(a, `https://x/${ID}/1`)
  assert.equal(b, a, 'one request for two callers')
  assert.deepEqual(asked[0], { p: 'p1', id: ID, version: 2, expiresIn: 600, preview: undefined })
  now += 200_000
  assert.equal(await links.resolve(uri), a, 'still fresh')
  now += 200_000 // less than 300 s left
  assert.equal(await links.resolve(uri), `https://x/${ID}/2`)
  await links.resolve(uri, { preview: { w: 256 } })
  assert.equal(asked.length, 3, 'a preview is another link')
  await assert.rejects(links.resolve('https://example.com/x.png'), RangeError)
  const gone = assetUri('ast_ffffffffffffffffffff')
  await assert.rejects(links.resolve(gone), ApiError)
  await assert.rejects(links.resolve(gone), ApiError)
  assert.equal(asked.filter((x) => x.id === 'ast_ffffffffffffffffffff').length, 2, 'a failure is not cached')
})
