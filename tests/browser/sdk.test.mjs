// The client SDK (client/lib) against the real worker: the typed /v1 client, token refresh when
// the server closes an expired connection with 4401, the document API reading what a client
// wrote, and api.assets uploading in parts and resuming against local R2. Runs in Node with the
// `ws` package; no browser needed.

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { createRequire } from 'node:module'
import { startDemoServer } from './server.mjs'

const require = createRequire(new URL('../../client/package.json', import.meta.url))
const WebSocket = require('ws')
const { connect, TandemxApi, ApiError, devTokenProvider } = await import('../../client/lib/index.js')

let server
const open = []
before(async () => { server = await startDemoServer() })
after(async () => {
  for (const c of open) c.destroy()
  await server?.stop()
})

const until = async (fn, what, timeout = 20_000) => {
  const started = Date.now()
  while (!(await fn())) {
    if (Date.now() - started > timeout) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

test('API client: project, key, member, document and token routes, problems as ApiError', async () => {
  const admin = new TandemxApi({ baseUrl: server.url, apiKey: server.adminSecret })
  const { project, key } = await admin.projects.create({ name: 'SDK test' })
  assert.match(key.secret, /^tx_/)
  const api = new TandemxApi({ baseUrl: server.url, apiKey: key.secret })
  assert.equal((await api.projects.get(project.id)).name, 'SDK test')
  const created = await api.keys.create(project.id, { name: 'ci', role: 'editor' })
  assert.ok((await api.keys.list(project.id)).keys.some((k) => k.id === created.id))
  await api.members.put(project.id, 'ada', { role: 'editor' })
  assert.ok((await api.members.list(project.id)).members.some((m) => m.sub === 'ada' && m.role === 'editor'))
  await api.documents.create(project.id, { name: 'board-1' })
  assert.ok((await api.documents.list(project.id)).documents.some((d) => d.name === 'board-1'))
  const token = await api.tokens.create(project.id, { sub: 'ada', room: 'board-1', role: 'viewer', ttl_seconds: 60 })
  assert.equal(typeof token.token, 'string')
  assert.ok(token.expires_at > Date.now() / 1000)

  await assert.rejects(api.tokens.create(project.id, { sub: 'ada', room: 'board-1', role: 'boss' }), (err) => {
    assert.ok(err instanceof ApiError)
    assert.equal(err.status, 400)
    assert.equal(typeof err.problem.type, 'string')
    assert.equal(typeof err.code, 'string')
    return true
  })
  const stranger = new TandemxApi({ baseUrl: server.url, apiKey: 'tx_key_not-a-key' })
  await assert.rejects(stranger.projects.get(project.id), (err) => err instanceof ApiError && err.status === 401)
})

test('connect(): a token that expires is replaced and the room keeps syncing', async () => {
  const admin = new TandemxApi({ baseUrl: server.url, apiKey: server.adminSecret })
  const { project, key } = await admin.projects.create({ name: 'refresh' })
  const api = new TandemxApi({ baseUrl: server.url, apiKey: key.secret })
  const room = `r-${crypto.randomBytes(4).toString('hex')}`
  const reasons = []
  const shortLived = async ({ reason }) => {
    reasons.push(reason)
    const t = await api.tokens.create(project.id, { sub: 'bot', room, role: 'editor', ttl_seconds: 2 })
    return { token: t.token, expiresAt: t.expires_at }
  }
  const a = connect({ url: server.url, room, getToken: shortLived, WebSocket, maxBackoffMs: 300 })
  const b = connect({ url: server.url, room, getToken: async () => (await api.tokens.create(project.id, { sub: 'b', room, role: 'editor', ttl_seconds: 600 })).token, WebSocket })
  open.push(a, b)
  const closes = []
  a.on('status', (e) => { if (e.code !== undefined) closes.push(e.code) })
  await until(() => a.status === 'synced' && b.status === 'synced', 'both synced')

  await until(() => closes.includes(4401), 'the server to close the expired connection with 4401', 15_000)
  await until(() => a.status === 'synced', 'a to reconnect with a fresh token')
  assert.deepEqual(reasons.slice(0, 2), ['initial', 'expired'])
  a.doc.getMap('nodes').set('after-refresh', 'yes')
  await until(() => b.doc.getMap('nodes').get('after-refresh') === 'yes', 'b to see the edit made after the refresh')

  // The document API reads what the clients wrote, as JSON.
  const content = await api.documents.get(project.id, room)
  assert.equal(content.content.nodes['after-refresh'], 'yes')
})

test('connect() with the development sign-in: roles from POST /v1/dev/token are enforced', async () => {
  const room = `dev-${crypto.randomBytes(4).toString('hex')}`
  const editor = connect({ url: server.url, room, WebSocket, getToken: devTokenProvider({ baseUrl: server.url, name: 'Ada', role: 'editor' }) })
  const viewer = connect({ url: server.url, room, WebSocket, getToken: devTokenProvider({ baseUrl: server.url, name: 'Vic', role: 'viewer' }) })
  open.push(editor, viewer)
  await until(() => editor.status === 'synced' && viewer.status === 'synced', 'both synced')
  assert.equal(editor.authMode, 'token')
  const denied = new Promise((resolve) => viewer.on('permission-denied', (e) => resolve(e.reason)))
  viewer.doc.getMap('nodes').set('from-viewer', 1)
  assert.match(await denied, /read-only|role/i)
  editor.doc.getMap('nodes').set('from-editor', 1)
  await until(() => viewer.doc.getMap('nodes').get('from-editor') === 1, 'the viewer to see the editor')
  assert.equal(editor.doc.getMap('nodes').get('from-viewer'), undefined)
})

test('api.assets against the worker: parts with progress, a resume that sends only what is missing, dedup, the library', { timeout: 120_000 }, async () => {
  const admin = new TandemxApi({ baseUrl: server.url, apiKey: server.adminSecret })
  const { project, key } = await admin.projects.create({ name: 'assets' })
  const api = new TandemxApi({ baseUrl: server.url, apiKey: key.secret })
  const MiB = 1024 * 1024
  const bytes = crypto.randomBytes(11 * MiB + 17)
  const file = new Blob([bytes], { type: 'application/octet-stream' })
  const sha = crypto.createHash('sha256').update(bytes).digest('hex')
  const online = { offline: () => false, online: async () => {} }

  // In parts (three of 5 MiB, the last the rest), two at a time.
  const seen = []
  const asset = await api.assets.upload(project.id, file, { name: 'noise.bin', tags: ['raw'], directLimit: 0, partSize: 5 * MiB, concurrency: 2, network: online, onProgress: (p) => seen.push(p) })
  assert.equal(asset.sha256, sha)
  assert.equal(asset.size, bytes.length)
  assert.deepEqual(asset.tags, ['raw'])
  assert.deepEqual(seen.at(-1), { phase: 'done', loaded: bytes.length, total: bytes.length })
  const down = Buffer.from(await (await api.assets.content(project.id, asset.id)).arrayBuffer())
  assert.ok(Buffer.compare(down, bytes) === 0, 'byte-exact')

  // A multipart upload left with one part stored: the resume sends the two others.
  const other = crypto.randomBytes(11 * MiB)
  const started = await api.assets.uploads.create(project.id, { name: 'resumed.bin', size: other.length, sha256: crypto.createHash('sha256').update(other).digest('hex'), part_size: 5 * MiB })
  await api.assets.uploads.putPart(project.id, started.upload.id, 2, new Blob([other.subarray(5 * MiB, 10 * MiB)]))
  const progress = []
  const resumed = await api.assets.resumeUpload(project.id, started.upload.id, new Blob([other]), { concurrency: 1, network: online, onProgress: (p) => progress.push(p.loaded) })
  assert.equal(progress[0], 5 * MiB, 'the stored part counts from the start')
  assert.deepEqual([...new Set(progress)], [5 * MiB, 10 * MiB, 11 * MiB])
  assert.ok(Buffer.compare(Buffer.from(await (await api.assets.content(project.id, resumed.id)).arrayBuffer()), other) === 0)

  // The same bytes again, small or large: stored once, nothing sent.
  const again = await api.assets.upload(project.id, file, { name: 'again.bin', directLimit: 0, network: online })
  assert.equal(again.deduplicated, true)
  const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000' +
    '1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082', 'hex')
  const dot = await api.assets.upload(project.id, new Blob([png], { type: 'image/png' }), { name: 'dot.png', network: online })
  assert.equal(dot.content_type, 'image/png')
  assert.equal(dot.deduplicated, false)

  // The library.
  const names = []
  for await (const a of api.assets.all(project.id, { limit: 2 })) names.push(a.name)
  assert.deepEqual(names, ['again.bin', 'dot.png', 'noise.bin', 'resumed.bin'])
  assert.deepEqual((await api.assets.list(project.id, { content_type: 'image/*' })).assets.map((a) => a.name), ['dot.png'])
  assert.deepEqual((await api.assets.tag(project.id, dot.id, 'brand')).tags, ['brand'])
  assert.equal((await api.assets.update(project.id, dot.id, { licence: { spdx: 'CC0-1.0' } })).licence.spdx, 'CC0-1.0')
  const link = await api.assets.signedUrl(project.id, dot.id, { expiresIn: 60 })
  assert.ok(Buffer.compare(Buffer.from(await (await fetch(link.url)).arrayBuffer()), png) === 0, 'a signed link needs no key')
  assert.equal((await api.assets.versions(project.id, dot.id)).versions.length, 1)
  assert.ok((await api.assets.delete(project.id, dot.id)).deleted_at > 0)
  assert.equal((await api.assets.restore(project.id, dot.id)).deleted_at, null)
  const storage = await api.assets.storage(project.id)
  assert.equal(storage.assets, 4)
  assert.equal(storage.files, 3)
  await assert.rejects(api.assets.get(project.id, 'ast_00000000000000000000'), (err) => err instanceof ApiError && err.status === 404)
})
