// The client SDK (client/lib) against the real worker: the typed /v1 client, token refresh when
// the server closes an expired connection with 4401, and the document API reading what a client
// wrote. Runs in Node with the `ws` package; no browser needed.

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
