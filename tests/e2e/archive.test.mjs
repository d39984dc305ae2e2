// Document archives against real local R2 and D1: a stock y-websocket client writes a document
// that references an uploaded asset; the export is a ustar file (parsed here) holding the
// manifest, the state, the rendering and the asset's bytes; importing it into another project
// gives the same document and byte-exact assets under the same ids. Malformed archives, a
// tampered file and an existing document are refused with nothing half-written.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { IS_REFERENCE, createProject, startServer, waitFor } from './server.mjs'
import { connectProvider, destroyAll, roomName, seededBytes, waitSynced, Y } from './helpers.mjs'

const SKIP = IS_REFERENCE && 'the reference server has no archives'

let server
let a // { project, key }
let b

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex')

async function call (who, method, path, { body, headers = {}, json } = {}) {
  const h = { authorization: `Bearer ${who.key}`, ...headers }
  if (json !== undefined) { h['content-type'] = 'application/json'; body = JSON.stringify(json) }
  const res = await fetch(`${server.url}/v1/projects/${who.project}${path}`, { method, headers: h, body, signal: AbortSignal.timeout(60_000) })
  const type = res.headers.get('content-type') || ''
  const out = type.includes('json') ? await res.json() : Buffer.from(await res.arrayBuffer())
  return { status: res.status, body: out, headers: res.headers }
}

async function ok (who, method, path, opts, status = 200) {
  const res = await call(who, method, path, opts)
  assert.equal(res.status, status, `${method} ${path}: ${res.body instanceof Buffer ? res.body.length + ' bytes' : JSON.stringify(res.body)}`)
  return res.body
}

// A ustar reader and writer, independent of the server's.
function parseTar (buf) {
  const entries = []
  let at = 0
  while (at + 512 <= buf.length) {
    const h = buf.subarray(at, at + 512)
    if (h.every((x) => x === 0)) {
      assert.ok(buf.subarray(at, at + 1024).every((x) => x === 0), 'two zero blocks end the archive')
      assert.equal(at + 1024, buf.length, 'nothing after the end blocks')
      return entries
    }
    const field = (from, len) => h.subarray(from, from + len).toString('latin1').replace(/\0.*$/s, '')
    let sum = 0
    for (let i = 0; i < 512; i++) sum += (i >= 148 && i < 156) ? 32 : h[i]
    assert.equal(parseInt(field(148, 8).trim(), 8), sum, 'header checksum')
    assert.equal(field(257, 6), 'ustar')
    assert.equal(String.fromCharCode(h[156]), '0')
    const size = parseInt(field(124, 12), 8)
    const name = field(0, 100)
    entries.push({ name, data: buf.subarray(at + 512, at + 512 + size) })
    at += 512 + Math.ceil(size / 512) * 512
  }
  assert.fail('the archive has no end blocks')
}

function makeTar (entries) {
  const parts = []
  for (const { name, data } of entries) {
    const h = Buffer.alloc(512)
    h.write(name, 0, 'utf8')
    h.write('0000644\0', 100); h.write('0000000\0', 108); h.write('0000000\0', 116)
    h.write(data.length.toString(8).padStart(11, '0') + '\0', 124)
    h.write('00000000000\0', 136)
    h.write('0', 156)
    h.write('ustar\x0000', 257)
    h.write('        ', 148)
    let sum = 0
    for (const x of h) sum += x
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148)
    parts.push(h, data, Buffer.alloc((512 - data.length % 512) % 512))
  }
  parts.push(Buffer.alloc(1024))
  return Buffer.concat(parts)
}

const importTar = (who, doc, tar) => call(who, 'POST', `/documents/${doc}/import`, { body: tar, headers: { 'content-type': 'application/x-tar' } })

async function storage (who) {
  return ok(who, 'GET', '/asset-usage')
}

const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000' +
  '1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082', 'hex')

let exported // { doc, tar, entries, manifest, asset, bytes, json }

before(async () => {
  if (SKIP) return
  server = await startServer()
  a = await createProject(server, 'Archive source')
  b = await createProject(server, 'Archive target')

  // Two files: a PNG referenced without a version, and a blob referenced as @1.
  const bytes = seededBytes(11, 700_000)
  const q = new URLSearchParams({ name: 'noise.bin', tags: 'raw' })
  const noise = await ok(a, 'POST', `/assets?${q}`, { body: bytes, headers: { 'tandemx-sha256': sha256(bytes), 'content-type': 'application/octet-stream' } }, 201)
  await ok(a, 'PATCH', `/assets/${noise.id}`, { json: { licence: { spdx: 'CC-BY-4.0', attribution: 'Ada' } } })
  const png = await ok(a, 'POST', '/assets?name=dot.png', { body: PNG, headers: { 'tandemx-sha256': sha256(PNG), 'content-type': 'image/png' } }, 201)

  const doc = roomName('archive')
  const { token } = await ok(a, 'POST', '/tokens', { json: { sub: 'ada', room: doc, role: 'editor' } }, 201)
  const client = connectProvider(server.wsUrl, doc, { params: { token } })
  await waitSynced(client)
  const node = new Y.Map()
  client.doc.getMap('nodes').set('n1', node)
  node.set('type', 'image')
  node.set('src', `tandemx://asset/${png.id}`)
  client.doc.getText('notes').insert(0, `Noise: tandemx://asset/${noise.id}@1 and a gone one tandemx://asset/ast_00000000000000000000.`)
  await waitFor(async () => (await call(a, 'GET', `/documents/${doc}`)).body.content?.nodes?.n1?.src, { description: 'the client edit stored' })
  const json = (await ok(a, 'GET', `/documents/${doc}`)).content
  destroyAll()
  exported = { doc, json, noise, png, bytes }
}, { timeout: 150_000 })

after(async () => {
  destroyAll()
  await server?.stop()
})

test('an export is a ustar file of the manifest, the state, the rendering and each file once', { skip: SKIP, timeout: 60_000 }, async () => {
  const { doc, json, noise, png, bytes } = exported
  const res = await call(a, 'GET', `/documents/${doc}/export`)
  assert.equal(res.status, 200, String(res.body))
  assert.equal(res.headers.get('content-type'), 'application/x-tar')
  assert.equal(res.headers.get('content-length'), String(res.body.length), 'the length is known up front')
  assert.match(res.headers.get('content-disposition'), /attachment/)
  const entries = parseTar(res.body)
  const names = entries.map((e) => e.name)
  assert.deepEqual(names.slice(0, 3), ['manifest.json', 'document.yjs', 'document.json'])
  assert.deepEqual(names.slice(3).sort(), [`assets/${sha256(bytes)}`, `assets/${sha256(PNG)}`].sort())

  const manifest = JSON.parse(entries[0].data)
  assert.equal(manifest.format, 'tandemx-archive/1')
  assert.equal(manifest.document, doc)
  assert.ok(manifest.exported_at > 0)
  const byId = Object.fromEntries(manifest.assets.map((x) => [x.id, x]))
  assert.equal(byId[png.id].content_type, 'image/png')
  assert.equal(byId[png.id].current, true)
  assert.equal(byId[noise.id].version, 1)
  assert.equal(byId[noise.id].size, bytes.length)
  assert.equal(byId[noise.id].sha256, sha256(bytes))
  assert.equal(byId[noise.id].path, `assets/${sha256(bytes)}`)
  assert.deepEqual(byId[noise.id].tags, ['raw'])
  assert.equal(byId[noise.id].licence.spdx, 'CC-BY-4.0')
  assert.equal(byId[noise.id].licence.attribution, 'Ada')
  assert.deepEqual(manifest.missing, [{ id: 'ast_00000000000000000000', version: null, reason: 'no such asset in the project' }])

  // The state is the whole document; the rendering is what GET answers.
  const copy = new Y.Doc()
  Y.applyUpdate(copy, entries[1].data)
  assert.equal(copy.getMap('nodes').get('n1').get('src'), `tandemx://asset/${png.id}`)
  assert.deepEqual(JSON.parse(entries[2].data), { name: doc, content: json })
  const file = entries.find((e) => e.name === `assets/${sha256(bytes)}`)
  assert.ok(Buffer.compare(file.data, bytes) === 0, 'byte-exact')
  exported.tar = res.body
  exported.entries = entries
  exported.manifest = manifest
})

test('an import into another project gives the same document and byte-exact assets under the same ids', { skip: SKIP, timeout: 90_000 }, async () => {
  const { doc, json, noise, png, bytes, tar } = exported
  const before = await storage(b)
  const target = roomName('imported')
  const made = await importTar(b, target, tar)
  assert.equal(made.status, 201, JSON.stringify(made.body))
  assert.equal(made.body.name, target)
  assert.deepEqual(made.body.assets.created.sort(), [noise.id, png.id].sort())
  assert.equal(made.body.files.stored, 2)
  const got = await ok(b, 'GET', `/documents/${target}`)
  assert.deepEqual(got.content, json, 'the same JSON')
  const content = await call(b, 'GET', `/assets/${noise.id}/versions/1/content`)
  assert.equal(content.status, 200)
  assert.ok(Buffer.compare(content.body, bytes) === 0, 'byte-exact in the other project')
  const pngBack = await call(b, 'GET', `/assets/${png.id}/content`)
  assert.ok(Buffer.compare(pngBack.body, PNG) === 0)
  const record = await ok(b, 'GET', `/assets/${noise.id}`)
  assert.equal(record.licence.spdx, 'CC-BY-4.0')
  assert.deepEqual(record.tags, ['raw'])
  const afterImport = await storage(b)
  assert.equal(afterImport.files, before.files + 2)
  // The listing knows the document.
  const docs = await ok(b, 'GET', '/documents')
  assert.ok(docs.documents.some((d) => d.name === target))

  // The round trip: exporting the import gives the same manifest entries, state and files.
  const again = parseTar((await ok(b, 'GET', `/documents/${target}/export`)))
  const strip = (m) => ({ ...m, document: null, exported_at: null })
  assert.deepEqual(strip(JSON.parse(again[0].data)), strip(exported.manifest))
  assert.deepEqual(JSON.parse(again[2].data).content, json)
  const one = new Y.Doc(); Y.applyUpdate(one, exported.entries[1].data)
  const two = new Y.Doc(); Y.applyUpdate(two, again[1].data)
  assert.deepEqual(two.toJSON(), one.toJSON())
  assert.deepEqual(again.slice(3).map((e) => [e.name, sha256(e.data)]), exported.entries.slice(3).map((e) => [e.name, sha256(e.data)]))

  // The same archive again under another name: the assets are this project's already.
  const second = await importTar(b, roomName('again'), tar)
  assert.equal(second.status, 201, JSON.stringify(second.body))
  assert.deepEqual(second.body.assets.created, [])
  assert.equal(second.body.assets.reused.length, 2)
  assert.equal((await storage(b)).files, afterImport.files, 'nothing stored twice')
  // Into the same name: the document exists.
  const exists = await importTar(b, target, tar)
  assert.equal(exists.status, 409, JSON.stringify(exists.body))
  void doc
})

test('malformed archives, a tampered file and taken ids are refused with nothing half-written', { skip: SKIP, timeout: 90_000 }, async () => {
  const { entries, manifest, bytes } = exported
  const c = await createProject(server, 'Archive refusals')
  const base = await storage(c)
  const nothingWritten = async (doc) => {
    const s = await storage(c)
    assert.equal(s.files, base.files, 'no file kept')
    assert.equal(s.assets, base.assets, 'no asset kept')
    assert.equal(s.bytes, base.bytes)
    assert.equal((await call(c, 'GET', `/documents/${doc}`)).status, 404, 'no document')
  }
  const cases = [
    ['not a tar', Buffer.from('hello, this is not an archive'.repeat(50)), 400],
    ['a truncated tar', exported.tar.subarray(0, exported.tar.length - 2000), 400],
    ['no manifest first', makeTar([entries[1], entries[0], ...entries.slice(2)]), 422],
    ['a manifest of another format', makeTar([{ name: 'manifest.json', data: Buffer.from(JSON.stringify({ ...manifest, format: 'zip/9' })) }, ...entries.slice(1)]), 422],
    ['a state that is not a Yjs update', makeTar([entries[0], { name: 'document.yjs', data: Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]) }, ...entries.slice(2)]), 422],
    ['a file the manifest lacks', makeTar([...entries, { name: 'assets/' + 'c'.repeat(64), data: Buffer.from('x') }]), 422],
    ['a listed file missing', makeTar(entries.filter((e) => e.name !== `assets/${sha256(bytes)}`)), 422],
    ['an empty body', Buffer.alloc(0), 400]
  ]
  for (const [what, tar, status] of cases) {
    const doc = roomName('bad')
    const res = await importTar(c, doc, tar)
    assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`)
    assert.equal(res.headers.get('content-type'), 'application/problem+json', what)
    await nothingWritten(doc)
  }

  // A file whose bytes are not its digest: R2 refuses it after the PNG was stored; that goes too.
  const tampered = entries.map((e) => e.name === `assets/${sha256(bytes)}`
    ? { name: e.name, data: Buffer.from(e.data).fill(7, 1000, 1010) }
    : e)
  // The PNG first, so that one file is stored before the tampered one is refused.
  const first = (e) => (e.name === `assets/${sha256(PNG)}` ? 0 : 1)
  const order = [...tampered.slice(0, 3), ...tampered.slice(3).sort((x, y) => first(x) - first(y))]
  const doc = roomName('tampered')
  const res = await importTar(c, doc, makeTar(order))
  assert.equal(res.status, 422, JSON.stringify(res.body))
  assert.equal(res.body.error, 'digest-mismatch')
  await nothingWritten(doc)

  // An id this project uses for other bytes.
  const other = seededBytes(12, 1000)
  const mine = await ok(c, 'POST', '/assets?name=mine.bin', { body: other, headers: { 'tandemx-sha256': sha256(other) } }, 201)
  const clash = JSON.parse(JSON.stringify(manifest))
  clash.assets[0].id = mine.id
  const clashDoc = roomName('clash')
  const refused = await importTar(c, clashDoc, makeTar([{ name: 'manifest.json', data: Buffer.from(JSON.stringify(clash)) }, ...entries.slice(1)]))
  assert.equal(refused.status, 409, JSON.stringify(refused.body))
  assert.match(refused.body.detail, new RegExp(mine.id))
  assert.equal((await call(c, 'GET', `/documents/${clashDoc}`)).status, 404)

  // A viewer key may export but not import.
  const viewer = await ok(a, 'POST', '/keys', { json: { name: 'viewer', role: 'viewer' } }, 201)
  const v = { project: a.project, key: viewer.secret ?? viewer.key?.secret }
  assert.equal((await call(v, 'GET', `/documents/${exported.doc}/export`)).status, 200)
  assert.equal((await importTar(v, roomName('viewer'), exported.tar)).status, 403)
})
