// The asset library against real local R2 and D1: uploads in one request and in resumable
// parts, bytes stored once, byte-exact downloads with ranges and conditional requests, the
// headers that keep uploaded markup from running, signed links, types checked against the
// bytes, quotas, roles, other projects, the trash, versions, tags, licences and usage.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import zlib from 'node:zlib'
import { IS_REFERENCE, createProject, d1Execute, sleep, startServer, waitFor } from './server.mjs'
import { seededBytes, startReceiver } from './helpers.mjs'

const SKIP = IS_REFERENCE && 'the reference server has no assets'
const MiB = 1024 * 1024

let server
let project
let key
let receiver

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex')

async function call (method, path, { auth = key, json, body, headers = {}, base = `/v1/projects/${project}` } = {}) {
  const h = { ...headers }
  if (auth) h.authorization = `Bearer ${auth}`
  if (json !== undefined) { h['content-type'] = 'application/json'; body = JSON.stringify(json) }
  const res = await fetch(`${server.url}${base}${path}`, { method, headers: h, body, signal: AbortSignal.timeout(60_000) })
  const type = res.headers.get('content-type') || ''
  const out = type.includes('json') ? await res.json() : Buffer.from(await res.arrayBuffer())
  return { status: res.status, body: out, headers: res.headers }
}

async function ok (method, path, opts, status = 200) {
  const res = await call(method, path, opts)
  assert.equal(res.status, status, `${method} ${path}: ${res.body instanceof Buffer ? res.body.length + ' bytes' : JSON.stringify(res.body)}`)
  return res.body
}

/** Uploads `bytes` in one request as `name`. */
function upload (bytes, name, { type = 'application/octet-stream', auth = key, digest = sha256(bytes), path = '/assets', tags } = {}) {
  const q = new URLSearchParams({ name })
  if (tags) q.set('tags', tags)
  return call('POST', `${path}?${q}`, { auth, body: bytes, headers: { 'content-type': type, 'tandemx-sha256': digest } })
}

// A 1×1 PNG.
const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000' +
  '1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082', 'hex')

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  return c >>> 0
})
function crc32 (buf) {
  let c = 0xffffffff
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}
function chunk (type, data) {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length)
  const td = Buffer.concat([Buffer.from(type), data])
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td))
  return Buffer.concat([len, td, crc])
}
/** An RGB PNG of `width` × `height` (a gradient), or only its header claiming that size. */
function png (width, height, { headerOnly = false } = {}) {
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4)
  ihdr[8] = 8; ihdr[9] = 2
  let idat = Buffer.alloc(0)
  if (!headerOnly) {
    const raw = Buffer.alloc((width * 3 + 1) * height)
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const o = y * (width * 3 + 1) + 1 + x * 3
        raw[o] = x % 256; raw[o + 1] = y % 256; raw[o + 2] = 128
      }
    }
    idat = zlib.deflateSync(raw)
  } else {
    idat = zlib.deflateSync(Buffer.alloc(1000))
  }
  return Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))])
}
const pngSize = (buf) => [buf.readUInt32BE(16), buf.readUInt32BE(20)]

before(async () => {
  if (SKIP) return
  receiver = await startReceiver()
  server = await startServer({ vars: { ASSET_DIRECT_UPLOAD_BYTES: String(8 * MiB), WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_RETRY_BASE_MS: '300' } })
  ;({ project, key } = await createProject(server, 'Assets'))
}, { timeout: 150_000 })

after(async () => {
  receiver?.close()
  await server?.stop()
})

test('a small upload downloads byte for byte; the same bytes again are stored once', { skip: SKIP, timeout: 60_000 }, async () => {
  const bytes = seededBytes(1, 300_000)
  const made = await upload(bytes, 'noise.bin', { tags: 'Raw,test' })
  assert.equal(made.status, 201, JSON.stringify(made.body))
  const asset = made.body
  assert.match(asset.id, /^ast_[0-9a-f]{20}$/)
  assert.equal(asset.size, bytes.length)
  assert.equal(asset.sha256, sha256(bytes))
  assert.equal(asset.version, 1)
  assert.deepEqual(asset.tags, ['raw', 'test'])
  assert.equal(asset.deduplicated, false)
  const down = await call('GET', `/assets/${asset.id}/content`)
  assert.equal(down.status, 200)
  assert.ok(Buffer.compare(down.body, bytes) === 0, 'byte-exact')
  assert.equal(down.headers.get('content-length'), String(bytes.length))
  assert.equal(down.headers.get('etag'), `"${asset.sha256}"`)
  assert.equal(down.headers.get('x-content-type-options'), 'nosniff')
  assert.match(down.headers.get('content-security-policy'), /default-src 'none'/)

  const storage = await ok('GET', '/asset-usage')
  const again = await upload(bytes, 'copy.bin')
  assert.equal(again.status, 201)
  assert.equal(again.body.deduplicated, true)
  assert.notEqual(again.body.id, asset.id)
  const after = await ok('GET', '/asset-usage')
  assert.equal(after.bytes, storage.bytes, 'nothing more stored')
  assert.equal(after.files, storage.files)
  assert.equal(after.assets, storage.assets + 1)
  const copy = await call('GET', `/assets/${again.body.id}/content`)
  assert.ok(Buffer.compare(copy.body, bytes) === 0)

  // A wrong digest stores nothing.
  const liar = await upload(seededBytes(2, 1000), 'liar.bin', { digest: sha256(Buffer.from('other')) })
  assert.equal(liar.status, 422, JSON.stringify(liar.body))
  assert.equal(liar.body.error, 'digest-mismatch')
  assert.equal((await ok('GET', '/asset-usage')).files, after.files)
  // No digest, no length, no name: refused.
  assert.equal((await upload(bytes, 'x', { digest: 'abc' })).status, 400)
  assert.equal((await call('POST', '/assets', { body: bytes, headers: { 'tandemx-sha256': sha256(bytes) } })).status, 400)
})

test('ranges, conditional requests and immutable versions', { skip: SKIP, timeout: 60_000 }, async () => {
  const bytes = seededBytes(3, 10_000)
  const asset = await ok('POST', `/assets?name=${encodeURIComponent('räng e.bin')}`, { body: bytes, headers: { 'tandemx-sha256': sha256(bytes) } }, 201)
  const part = await call('GET', `/assets/${asset.id}/content`, { headers: { range: 'bytes=100-199' } })
  assert.equal(part.status, 206)
  assert.equal(part.headers.get('content-range'), 'bytes 100-199/10000')
  assert.ok(Buffer.compare(part.body, bytes.subarray(100, 200)) === 0)
  const tail = await call('GET', `/assets/${asset.id}/content`, { headers: { range: 'bytes=-10' } })
  assert.equal(tail.status, 206)
  assert.ok(Buffer.compare(tail.body, bytes.subarray(9990)) === 0)
  const beyond = await call('GET', `/assets/${asset.id}/content`, { headers: { range: 'bytes=10000-' } })
  assert.equal(beyond.status, 416)
  assert.equal(beyond.headers.get('content-range'), 'bytes */10000')
  // Several ranges are answered with the whole content.
  assert.equal((await call('GET', `/assets/${asset.id}/content`, { headers: { range: 'bytes=0-1,5-6' } })).status, 200)

  const full = await call('GET', `/assets/${asset.id}/versions/1/content`)
  assert.match(full.headers.get('cache-control'), /immutable/)
  assert.match(full.headers.get('content-disposition'), /filename\*=UTF-8''r%C3%A4ng%20e\.bin/)
  const etag = full.headers.get('etag')
  assert.equal((await call('GET', `/assets/${asset.id}/versions/1/content`, { headers: { 'if-none-match': etag } })).status, 304)
  assert.equal((await call('GET', `/assets/${asset.id}/content`, { headers: { 'if-none-match': `W/${etag}, "x"` } })).status, 304)
  const lm = full.headers.get('last-modified')
  assert.equal((await call('GET', `/assets/${asset.id}/content`, { headers: { 'if-modified-since': lm } })).status, 304)
  assert.equal((await call('GET', `/assets/${asset.id}/content`, { headers: { 'if-none-match': '"other"' } })).status, 200)
  // If-Range with another tag: the whole content.
  assert.equal((await call('GET', `/assets/${asset.id}/content`, { headers: { range: 'bytes=0-1', 'if-range': '"other"' } })).status, 200)

  // A new version: the current content moves, version 1 stays.
  const v2bytes = seededBytes(4, 500)
  const v2 = await ok('POST', `/assets/${asset.id}/versions?name=v2.bin`, { body: v2bytes, headers: { 'tandemx-sha256': sha256(v2bytes) } }, 201)
  assert.equal(v2.version, 2)
  assert.equal(v2.name, 'v2.bin')
  assert.ok(Buffer.compare((await call('GET', `/assets/${asset.id}/content`)).body, v2bytes) === 0)
  assert.ok(Buffer.compare((await call('GET', `/assets/${asset.id}/versions/1/content`)).body, bytes) === 0)
  const versions = await ok('GET', `/assets/${asset.id}/versions`)
  assert.deepEqual(versions.versions.map((v) => v.version), [2, 1])
  assert.equal((await call('GET', `/assets/${asset.id}/versions/3/content`)).status, 404)
})

test('markup never runs from the asset origin; an image type must match its bytes', { skip: SKIP, timeout: 60_000 }, async () => {
  const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
  const made = await upload(svg, 'x.svg', { type: 'image/svg+xml' })
  assert.equal(made.status, 201, JSON.stringify(made.body))
  const served = await call('GET', `/assets/${made.body.id}/content`)
  assert.equal(served.headers.get('content-type'), 'image/svg+xml')
  assert.match(served.headers.get('content-security-policy'), /default-src 'none'; sandbox/)
  assert.equal(served.headers.get('x-content-type-options'), 'nosniff')

  const html = Buffer.from('<!doctype html><script>alert(document.cookie)</script>')
  const disguised = await upload(html, 'cat.png', { type: 'image/png' })
  assert.equal(disguised.status, 422)
  assert.equal(disguised.body.error, 'content-mismatch')
  assert.match(disguised.body.detail, /text\/html/)
  // Declared as HTML it is stored, but only ever served as an attachment under the CSP.
  const page = await upload(html, 'page.html', { type: 'text/html' })
  assert.equal(page.status, 201)
  const got = await call('GET', `/assets/${page.body.id}/content`)
  assert.match(got.headers.get('content-disposition'), /^attachment/)
  assert.match(got.headers.get('content-security-policy'), /sandbox/)

  const png = await upload(PNG, 'dot.png', { type: 'image/png' })
  assert.equal(png.status, 201)
  assert.equal(png.body.content_type, 'image/png')
  // Undeclared: what the bytes show.
  const sniffed = await upload(PNG, 'dot2', { type: '' })
  assert.equal(sniffed.body.content_type, 'image/png')
})

test('signed links: valid, expired, altered', { skip: SKIP, timeout: 60_000 }, async () => {
  const bytes = seededBytes(5, 2000)
  const asset = (await upload(bytes, 'signed.bin')).body
  const link = await ok('POST', `/assets/${asset.id}/links`, { json: { expires_in: 60 } }, 201)
  assert.ok(link.url.startsWith(server.url))
  const got = await fetch(link.url)
  assert.equal(got.status, 200)
  assert.ok(Buffer.compare(Buffer.from(await got.arrayBuffer()), bytes) === 0)
  assert.match(got.headers.get('cache-control'), /max-age=/)
  // Altered: another version, another asset, another expiry, a flipped signature.
  const u = new URL(link.url)
  const flipped = new URL(u); flipped.searchParams.set('sig', u.searchParams.get('sig').replace(/^./, (c) => c === 'A' ? 'B' : 'A'))
  const later = new URL(u); later.searchParams.set('expires', String(Number(u.searchParams.get('expires')) + 1000))
  const download = new URL(u); download.searchParams.set('download', 'true')
  const other = new URL(u.href.replace(`/assets/${asset.id}/`, '/assets/ast_00000000000000000000/'))
  for (const bad of [flipped, later, download, other]) {
    const res = await fetch(bad)
    assert.equal(res.status, 403, bad.href)
  }
  // The current-version route takes no links.
  const current = new URL(u.href.replace('/versions/1/content', '/content'))
  assert.equal((await fetch(current)).status, 401)
  // Expired.
  const short = await ok('POST', `/assets/${asset.id}/links`, { json: { expires_in: 1, download: true } }, 201)
  assert.equal((await fetch(short.url)).status, 200)
  await sleep(2100)
  const expired = await fetch(short.url)
  assert.equal(expired.status, 403)
  assert.match((await expired.json()).detail, /expired/)
  assert.equal((await call('POST', `/assets/${asset.id}/links`, { json: { expires_in: 99999999 } })).status, 400)
})

test('roles and projects: viewers download but do not upload; another project sees nothing', { skip: SKIP, timeout: 60_000 }, async () => {
  const bytes = seededBytes(6, 100)
  const asset = (await upload(bytes, 'roles.bin')).body
  const viewer = (await ok('POST', '/tokens', { json: { sub: 'vic', room: '*', role: 'viewer' } }, 201)).token
  const editor = (await ok('POST', '/tokens', { json: { sub: 'eddie', room: '*', role: 'editor' } }, 201)).token
  assert.equal((await call('GET', `/assets/${asset.id}/content`, { auth: viewer })).status, 200)
  const refused = await upload(bytes, 'nope.bin', { auth: viewer })
  assert.equal(refused.status, 403)
  assert.equal((await call('DELETE', `/assets/${asset.id}`, { auth: editor })).status, 403)
  const mine = await upload(seededBytes(7, 50), 'eddie.bin', { auth: editor })
  assert.equal(mine.status, 201)
  assert.equal(mine.body.uploader, 'eddie')
  assert.equal((await call('PUT', `/assets/${asset.id}/tags/x`, { auth: viewer })).status, 403)

  const other = await createProject(server, 'Other')
  const elsewhere = await call('GET', `/assets/${asset.id}`, { auth: other.key, base: `/v1/projects/${other.project}` })
  assert.equal(elsewhere.status, 404)
  const content = await call('GET', `/assets/${asset.id}/content`, { auth: other.key, base: `/v1/projects/${other.project}` })
  assert.equal(content.status, 404)
  // The other project's key on this project's path: not this project.
  assert.equal((await call('GET', `/assets/${asset.id}`, { auth: other.key })).status, 404)
})

test('quotas: a file too large, a project full', { skip: SKIP, timeout: 60_000 }, async () => {
  const q = await createProject(server, 'Quota')
  const qcall = (method, path, opts = {}) => call(method, path, { auth: q.key, base: `/v1/projects/${q.project}`, ...opts })
  assert.equal((await qcall('PATCH', '', { json: { asset_quota_bytes: 3000, asset_max_file_bytes: 2000 } })).status, 200)
  const put = (bytes, name) => qcall('POST', `/assets?name=${name}`, { body: bytes, headers: { 'tandemx-sha256': sha256(bytes) } })
  const big = await put(seededBytes(8, 2001), 'big')
  assert.equal(big.status, 413)
  assert.equal(big.body.error, 'file-too-large')
  assert.equal((await put(seededBytes(9, 2000), 'a')).status, 201)
  const full = await put(seededBytes(10, 1500), 'b')
  assert.equal(full.status, 409)
  assert.equal(full.body.error, 'quota-exceeded')
  // The same bytes again take no room.
  assert.equal((await put(seededBytes(9, 2000), 'again')).status, 201)
  const multipart = await qcall('POST', '/uploads', { json: { name: 'm', size: 1500, sha256: sha256(seededBytes(10, 1500)) } })
  assert.equal(multipart.status, 409)
  const usage = (await qcall('GET', '/asset-usage')).body
  assert.equal(usage.bytes, 2000)
  assert.equal(usage.quota_bytes, 3000)
  assert.equal(usage.assets, 2)
})

test('a 20 MB upload in parts, interrupted and resumed', { skip: SKIP, timeout: 180_000 }, async () => {
  const bytes = seededBytes(11, 20 * MiB)
  const partSize = 5 * MiB
  const started = await ok('POST', '/uploads', { json: { name: 'big.bin', size: bytes.length, sha256: sha256(bytes), part_size: partSize, tags: ['video'] } }, 201)
  assert.equal(started.complete, false)
  const up = started.upload
  assert.equal(up.parts, 4)
  const part = (n) => bytes.subarray((n - 1) * partSize, n * partSize)
  for (const n of [1, 2]) {
    assert.deepEqual(await ok('PUT', `/uploads/${up.id}/parts/${n}`, { body: part(n) }), { part_number: n, size: partSize })
  }
  // The connection drops in the middle of part 3.
  const ac = new AbortController()
  const dropped = fetch(`${server.url}/v1/projects/${project}/uploads/${up.id}/parts/3`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${key}`, 'content-length': String(partSize) },
    body: new ReadableStream({
      start (c) { c.enqueue(part(3).subarray(0, MiB)) },
      pull () { ac.abort(); return new Promise(() => {}) }
    }),
    duplex: 'half',
    signal: ac.signal
  }).catch((e) => e)
  assert.ok((await dropped) instanceof Error)
  // Too early to complete; the client asks what arrived and sends the rest.
  const early = await call('POST', `/uploads/${up.id}/complete`)
  assert.equal(early.status, 409)
  assert.match(early.body.detail, /missing: 3, 4/)
  const state = await ok('GET', `/uploads/${up.id}`)
  assert.deepEqual(state.received.map((p) => p.part_number), [1, 2])
  // A part of the wrong size is refused.
  assert.equal((await call('PUT', `/uploads/${up.id}/parts/3`, { body: part(3).subarray(1) })).status, 400)
  assert.equal((await call('PUT', `/uploads/${up.id}/parts/5`, { body: part(1) })).status, 404)
  for (const n of [3, 4]) await ok('PUT', `/uploads/${up.id}/parts/${n}`, { body: part(n) })
  const asset = await ok('POST', `/uploads/${up.id}/complete`, {}, 201)
  assert.equal(asset.size, bytes.length)
  assert.deepEqual(asset.tags, ['video'])
  const down = await call('GET', `/assets/${asset.id}/content`)
  assert.equal(sha256(down.body), sha256(bytes), 'byte-exact')
  assert.equal((await call('GET', `/uploads/${up.id}`)).status, 404, 'the upload is gone once complete')
  // The same bytes again: complete at once, nothing to send.
  const again = await ok('POST', '/uploads', { json: { name: 'big again.bin', size: bytes.length, sha256: sha256(bytes) } }, 201)
  assert.equal(again.complete, true)
  assert.equal(again.asset.deduplicated, true)
})

test('an upload whose parts do not match its digest keeps nothing; aborts drop the parts', { skip: SKIP, timeout: 90_000 }, async () => {
  const bytes = seededBytes(12, 6 * MiB)
  const before = await ok('GET', '/asset-usage')
  const up = (await ok('POST', '/uploads', { json: { name: 'lie.bin', size: bytes.length, sha256: sha256(Buffer.from('not these')) } }, 201)).upload
  for (let n = 1; n <= up.parts; n++) {
    await ok('PUT', `/uploads/${up.id}/parts/${n}`, { body: bytes.subarray((n - 1) * up.part_size, n * up.part_size) })
  }
  const done = await call('POST', `/uploads/${up.id}/complete`)
  assert.equal(done.status, 422, JSON.stringify(done.body))
  assert.equal(done.body.error, 'digest-mismatch')
  const after = await ok('GET', '/asset-usage')
  assert.equal(after.files, before.files)
  assert.equal(after.assets, before.assets)

  const html = Buffer.concat([Buffer.from('<html><script>1</script>'), Buffer.alloc(100)])
  const fake = (await ok('POST', '/uploads', { json: { name: 'fake.png', size: html.length, sha256: sha256(html), content_type: 'image/png' } }, 201)).upload
  await ok('PUT', `/uploads/${fake.id}/parts/1`, { body: html })
  const refused = await call('POST', `/uploads/${fake.id}/complete`)
  assert.equal(refused.status, 422)
  assert.equal(refused.body.error, 'content-mismatch')

  const ab = (await ok('POST', '/uploads', { json: { name: 'ab.bin', size: 10, sha256: sha256(Buffer.alloc(10)) } }, 201)).upload
  assert.equal((await ok('DELETE', `/uploads/${ab.id}`)).state, 'aborted')
  assert.equal((await call('PUT', `/uploads/${ab.id}/parts/1`, { body: Buffer.alloc(10) })).status, 404)
  assert.equal((await call('POST', '/uploads', { json: { name: 'p', size: 10, sha256: sha256(Buffer.alloc(10)), part_size: 10 } })).status, 400)
})

test('library: list and search, tags, licence, trash, restore, purge, refusal while in use', { skip: SKIP, timeout: 90_000 }, async () => {
  const lib = await createProject(server, 'Library')
  const lcall = (method, path, opts = {}) => call(method, path, { auth: lib.key, base: `/v1/projects/${lib.project}`, ...opts })
  const put = async (bytes, name, type = 'application/octet-stream') => {
    const res = await lcall('POST', `/assets?name=${encodeURIComponent(name)}`, { body: bytes, headers: { 'tandemx-sha256': sha256(bytes), 'content-type': type } })
    assert.equal(res.status, 201, JSON.stringify(res.body))
    return res.body
  }
  const logo = await put(PNG, 'logo.png', 'image/png')
  const icon = await put(seededBytes(13, 10), 'icon-a.bin')
  const font = await put(seededBytes(14, 10), 'font.woff2', 'font/woff2')
  assert.equal((await lcall('PUT', `/assets/${logo.id}/tags/Brand`)).body.tags[0], 'brand')
  await lcall('PUT', `/assets/${icon.id}/tags/brand`)
  assert.equal((await lcall('PUT', `/assets/${icon.id}/tags/${encodeURIComponent('bad tag')}`)).status, 400)
  const names = async (q) => (await lcall('GET', `/assets?${q}`)).body.assets.map((a) => a.name)
  assert.deepEqual(await names(''), ['font.woff2', 'icon-a.bin', 'logo.png'])
  assert.deepEqual(await names('tag=brand'), ['icon-a.bin', 'logo.png'])
  assert.deepEqual(await names('content_type=image/*'), ['logo.png'])
  assert.deepEqual(await names('prefix=ic'), ['icon-a.bin'])
  assert.deepEqual(await names('prefix=%25'), [])
  const page1 = (await lcall('GET', '/assets?limit=2')).body
  assert.equal(page1.assets.length, 2)
  const page2 = (await lcall('GET', `/assets?limit=2&cursor=${page1.next_cursor}`)).body
  assert.deepEqual(page2.assets.map((a) => a.name), ['logo.png'])
  assert.equal(page2.next_cursor, null)
  assert.equal((await lcall('GET', '/assets?limit=0')).status, 400)
  assert.equal((await lcall('GET', '/assets?trashed=maybe')).status, 400)

  const licence = { spdx: 'CC-BY-4.0', attribution: 'Jane Doe', source_url: 'https://example.org/logo' }
  const named = (await lcall('PATCH', `/assets/${logo.id}`, { json: { name: 'Logo (final).png', licence } })).body
  assert.deepEqual(named.licence, licence)
  assert.equal(named.name, 'Logo (final).png')
  assert.equal((await lcall('PATCH', `/assets/${logo.id}`, { json: { licence: { source_url: 'javascript:alert(1)' } } })).status, 400)
  assert.equal((await lcall('PATCH', `/assets/${logo.id}`, { json: { licence: null } })).body.licence, null)

  // A document uses the logo (as its room records it): deleting it is refused, naming it.
  await d1Execute(server, `INSERT INTO asset_usage (project_id, document, asset_id, refs, updated_at) VALUES ('${lib.project}', 'board-1', '${logo.id}', 2, 0)`)
  assert.equal((await lcall('GET', `/assets/${logo.id}`)).body.used_by, 1)
  assert.deepEqual((await lcall('GET', `/assets/${logo.id}/usage`)).body.documents, [{ document: 'board-1', refs: 2 }])
  const docAssets = (await lcall('GET', '/documents/board-1/assets')).body
  assert.equal(docAssets.assets[0].id, logo.id)
  assert.equal(docAssets.assets[0].asset.name, 'Logo (final).png')
  assert.deepEqual(await names('orphans=true'), ['font.woff2', 'icon-a.bin'])
  const refused = await lcall('DELETE', `/assets/${logo.id}`)
  assert.equal(refused.status, 409)
  assert.match(refused.body.detail, /board-1/)
  const forced = (await lcall('DELETE', `/assets/${logo.id}?force=true`)).body
  assert.ok(forced.deleted_at > 0)
  assert.ok(forced.purge_at > forced.deleted_at)
  assert.equal((await lcall('GET', `/assets/${logo.id}/content`)).status, 404)
  assert.deepEqual(await names('trashed=true'), ['Logo (final).png'])
  assert.equal((await lcall('POST', `/assets/${logo.id}/restore`)).body.deleted_at, null)
  assert.equal((await lcall('GET', `/assets/${logo.id}/content`)).status, 200)

  // Purged for good: rows and bytes (the font's bytes are its alone).
  const before = (await lcall('GET', '/asset-usage')).body
  assert.equal((await lcall('POST', `/assets/${font.id}/purge`)).status, 409, 'only from the trash')
  await lcall('DELETE', `/assets/${font.id}`)
  assert.deepEqual((await lcall('POST', `/assets/${font.id}/purge`)).body, { id: font.id, purged: true })
  assert.equal((await lcall('GET', `/assets/${font.id}`)).status, 404)
  const afterPurge = (await lcall('GET', '/asset-usage')).body
  assert.equal(afterPurge.files, before.files - 1)
  assert.equal(afterPurge.bytes, before.bytes - 10)
})

test('bad input is refused with problem details and changes nothing', { skip: SKIP, timeout: 30_000 }, async () => {
  const bytes = seededBytes(15, 10)
  const cases = [
    ['GET', '/assets/..%2F..%2Fetc/content'],
    ['GET', '/assets/ast_00000000000000000000/content'],
    ['GET', '/assets/ast_00000000000000000000/versions/abc/content'],
    ['GET', '/uploads/upl_nope'],
    ['PUT', '/uploads/upl_nope/parts/0'],
    ['POST', '/uploads', { json: { name: '', size: 1, sha256: sha256(bytes) } }],
    ['POST', '/uploads', { json: { name: 'a', size: 1, sha256: 'x' } }],
    ['POST', '/uploads', { json: { name: 'a', size: 1, sha256: sha256(bytes), extra: 1 } }],
    ['POST', `/assets?name=${encodeURIComponent('a\u0001b')}`, { body: bytes, headers: { 'tandemx-sha256': sha256(bytes) } }],
    ['POST', '/assets?name=a&tags=no%20spaces', { body: bytes, headers: { 'tandemx-sha256': sha256(bytes) } }]
  ]
  const before = await ok('GET', '/asset-usage')
  for (const [method, path, opts] of cases) {
    const res = await call(method, path, opts)
    assert.ok(res.status >= 400 && res.status < 500, `${method} ${path}: ${res.status}`)
    assert.ok(res.headers.get('content-type').includes('problem+json'), `${method} ${path}`)
  }
  const after = await ok('GET', '/asset-usage')
  assert.equal(after.assets, before.assets)
  // Too large for one request: told to use parts.
  const big = await call('POST', '/assets?name=big', { body: Buffer.alloc(8 * MiB + 1), headers: { 'tandemx-sha256': sha256(Buffer.alloc(8 * MiB + 1)) } })
  assert.equal(big.status, 413)
})

test('webhooks and the audit log tell of uploads, versions, deletions and restores', { skip: SKIP, timeout: 60_000 }, async () => {
  const w = await createProject(server, 'Hooks')
  const wcall = (method, path, opts = {}) => call(method, path, { auth: w.key, base: `/v1/projects/${w.project}`, ...opts })
  assert.equal((await wcall('POST', '/webhooks', { json: { url: `${receiver.url}/assets`, events: ['asset.*'] } })).status, 201)
  const bytes = seededBytes(16, 64)
  const made = (await wcall('POST', '/assets?name=hooked.bin', { body: bytes, headers: { 'tandemx-sha256': sha256(bytes) } })).body
  const v2 = seededBytes(17, 64)
  assert.equal((await wcall('POST', `/assets/${made.id}/versions?name=hooked2.bin`, { body: v2, headers: { 'tandemx-sha256': sha256(v2) } })).status, 201)
  assert.equal((await wcall('DELETE', `/assets/${made.id}`)).status, 200)
  assert.equal((await wcall('POST', `/assets/${made.id}/restore`)).status, 200)
  const types = () => receiver.requests.filter((r) => r.path === '/assets').map((r) => JSON.parse(r.body))
  await waitFor(() => types().length >= 4, { timeout: 20_000, description: 'four asset events' })
  assert.deepEqual(types().map((e) => e.type).sort(), ['asset.created', 'asset.deleted', 'asset.restored', 'asset.version_created'])
  const created = types().find((e) => e.type === 'asset.created')
  assert.equal(created.data.asset.id, made.id)
  assert.equal(created.data.asset.sha256, sha256(bytes))
  assert.equal(types().find((e) => e.type === 'asset.version_created').data.asset.version, 2)
  const audit = (await wcall('GET', '/audit')).body
  const actions = audit.events.map((a) => a.action)
  for (const a of ['asset.upload', 'asset.version', 'asset.delete', 'asset.restore']) assert.ok(actions.includes(a), `${a} in ${actions}`)
})

test('the cron sweep purges trashed assets whose time is up and drops expired uploads', { skip: SKIP, timeout: 60_000 }, async () => {
  const s = await createProject(server, 'Sweep')
  const scall = (method, path, opts = {}) => call(method, path, { auth: s.key, base: `/v1/projects/${s.project}`, ...opts })
  const bytes = seededBytes(18, 500)
  const keep = seededBytes(19, 500)
  const gone = (await scall('POST', '/assets?name=gone.bin', { body: bytes, headers: { 'tandemx-sha256': sha256(bytes) } })).body
  const old = (await scall('POST', '/assets?name=old.bin', { body: keep, headers: { 'tandemx-sha256': sha256(keep) } })).body
  const up = (await scall('POST', '/uploads', { json: { name: 'stale.bin', size: 10, sha256: sha256(Buffer.alloc(10)) } })).body.upload
  await scall('DELETE', `/assets/${gone.id}`)
  await scall('DELETE', `/assets/${old.id}`)
  // The project keeps its trash for 0 days: the deleted asset is due at once; the other
  // project's trash (30 days) is untouched. The upload is made to have expired.
  assert.equal((await scall('PATCH', '', { json: { asset_trash_days: 0 } })).status, 200)
  await d1Execute(server, `UPDATE assets SET deleted_at = 1 WHERE project_id = '${s.project}' AND id = '${old.id}'`)
  await d1Execute(server, `UPDATE projects SET asset_trash_days = 1000 WHERE id = '${project}'`)
  await d1Execute(server, `UPDATE asset_uploads SET expires_at = 1 WHERE id = '${up.id}'`)
  const trashedElsewhere = (await ok('GET', '/assets?trashed=true')).assets.length
  const before = (await scall('GET', '/asset-usage')).body
  assert.equal(before.files, 2)
  const ran = await fetch(`${server.url}/__scheduled?cron=*/15+*+*+*+*`)
  assert.equal(ran.status, 200)
  await waitFor(async () => (await scall('GET', `/assets/${gone.id}`)).status === 404, { timeout: 20_000, description: 'purged' })
  assert.equal((await scall('GET', `/assets/${old.id}`)).status, 404)
  const after = (await scall('GET', '/asset-usage')).body
  assert.equal(after.files, 0)
  assert.equal(after.bytes, 0)
  const rows = await d1Execute(server, `SELECT COUNT(*) AS n FROM asset_uploads WHERE id = '${up.id}'`)
  assert.match(rows, /"n": 0/)
  assert.equal((await ok('GET', '/assets?trashed=true')).assets.length, trashedElsewhere)

  // A deleted project's assets go at the next sweep, bytes and rows.
  const d = await createProject(server, 'Doomed')
  const doomed = seededBytes(20, 300)
  assert.equal((await call('POST', '/assets?name=d.bin', { auth: d.key, base: `/v1/projects/${d.project}`, body: doomed, headers: { 'tandemx-sha256': sha256(doomed) } })).status, 201)
  assert.equal((await call('DELETE', '', { auth: d.key, base: `/v1/projects/${d.project}` })).status, 200)
  await fetch(`${server.url}/__scheduled?cron=*/15+*+*+*+*`)
  await waitFor(async () => /"n": 0/.test(await d1Execute(server, `SELECT COUNT(*) AS n FROM asset_blobs WHERE project_id = '${d.project}'`)), { timeout: 20_000, description: 'the deleted project\'s blobs purged' })
  assert.match(await d1Execute(server, `SELECT COUNT(*) AS n FROM assets WHERE project_id = '${d.project}'`), /"n": 0/)
})

test('previews: resized as asked, cached, signed; bombs and non-images refused', { skip: SKIP, timeout: 120_000 }, async () => {
  const image = png(600, 400)
  const asset = (await upload(image, 'gradient.png', { type: 'image/png' })).body
  const first = await call('GET', `/assets/${asset.id}/preview?w=256&format=png`)
  assert.equal(first.status, 200, first.body instanceof Buffer ? '' : JSON.stringify(first.body))
  assert.equal(first.headers.get('content-type'), 'image/png')
  assert.deepEqual(pngSize(first.body), [256, 171])
  assert.match(first.headers.get('content-security-policy'), /default-src 'none'/)
  // Made once: the second answer is the cached file, byte for byte; its tag answers 304.
  const again = await call('GET', `/assets/${asset.id}/preview?w=256&format=png`)
  assert.ok(Buffer.compare(again.body, first.body) === 0)
  assert.equal((await call('GET', `/assets/${asset.id}/preview?w=256&format=png`, { headers: { 'if-none-match': again.headers.get('etag') } })).status, 304)
  // Never larger than the image; WebP and JPEG too.
  assert.deepEqual(pngSize((await call('GET', `/assets/${asset.id}/preview?w=1024&format=png`)).body), [600, 400])
  const webp = await call('GET', `/assets/${asset.id}/preview?w=128&format=webp`)
  assert.equal(webp.status, 200)
  assert.equal(webp.body.subarray(0, 4).toString(), 'RIFF')
  assert.equal(webp.body.subarray(8, 12).toString(), 'WEBP')
  const jpeg = await call('GET', `/assets/${asset.id}/preview?w=64&format=jpeg`)
  assert.deepEqual([...jpeg.body.subarray(0, 3)], [0xff, 0xd8, 0xff])
  // Bad parameters.
  assert.equal((await call('GET', `/assets/${asset.id}/preview?w=300`)).status, 400)
  assert.equal((await call('GET', `/assets/${asset.id}/preview?w=256&format=gif`)).status, 400)
  // A signed preview link.
  const link = await ok('POST', `/assets/${asset.id}/links`, { json: { preview: { w: 64, format: 'png' } } }, 201)
  const viaLink = await fetch(link.url)
  assert.equal(viaLink.status, 200)
  assert.deepEqual(pngSize(Buffer.from(await viaLink.arrayBuffer())), [64, 43])
  const altered = new URL(link.url); altered.searchParams.set('w', '128')
  assert.equal((await fetch(altered)).status, 403)

  // A decompression bomb: a valid PNG whose header claims 30000 × 30000.
  const bomb = (await upload(png(30000, 30000, { headerOnly: true }), 'bomb.png', { type: 'image/png' })).body
  const refused = await call('GET', `/assets/${bomb.id}/preview?w=256&format=png`)
  assert.equal(refused.status, 422)
  assert.equal(refused.body.error, 'image-too-large')
  assert.match(refused.body.detail, /30000/)
  // Not an image.
  const text = (await upload(Buffer.from('hello'), 'a.txt', { type: 'text/plain' })).body
  assert.equal((await call('GET', `/assets/${text.id}/preview?w=256`)).status, 415)
})
