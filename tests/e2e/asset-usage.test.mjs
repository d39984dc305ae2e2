// Rooms record which assets their document references (docs/asset-references.md): a stock
// y-websocket client writes `tandemx://asset/<id>` into the document, and the project's D1
// rows, read through the usage routes, follow it within ASSET_USAGE_SECONDS (1 s here).

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { IS_REFERENCE, createProject, d1Execute, sleep, startServer, waitFor } from './server.mjs'
import { Y, canonical, connectProvider, destroyAll, roomName, waitSynced } from './helpers.mjs'

const SKIP = IS_REFERENCE && 'the reference server has no assets'

let server
let project
let key

async function call (method, path, { json, bytes, headers = {} } = {}) {
  headers = { authorization: `Bearer ${key}`, ...headers }
  let body
  if (json !== undefined) { headers['content-type'] = 'application/json'; body = JSON.stringify(json) }
  if (bytes !== undefined) body = bytes
  const res = await fetch(`${server.url}/v1/projects/${project}${path}`, { method, headers, body, signal: AbortSignal.timeout(10_000) })
  const type = res.headers.get('content-type') || ''
  return { status: res.status, body: type.includes('json') ? await res.json() : await res.text() }
}

async function ok (method, path, opts, status = 200) {
  const res = await call(method, path, opts)
  assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)}`)
  return res.body
}

/** Uploads a small file; returns its asset id. */
async function upload (name, text) {
  const bytes = Buffer.from(text)
  const sha = crypto.createHash('sha256').update(bytes).digest('hex')
  const made = await ok('POST', `/assets?name=${encodeURIComponent(name)}`, {
    bytes,
    headers: { 'content-type': 'text/plain', 'tandemx-sha256': sha }
  }, 201)
  return made.id
}

/** What the document's rows say: `{ id: refs }`. */
async function documentAssets (room) {
  const body = await ok('GET', `/documents/${room}/assets`)
  return Object.fromEntries(body.assets.map((a) => [a.id, a.refs]))
}

/** Waits until the document's rows are `want` (`{ id: refs }`, in any order). */
async function rowsBecome (room, want, description) {
  let last
  await waitFor(async () => {
    last = await documentAssets(room)
    return canonical(last) === canonical(want)
  }, { timeout: 15_000, interval: 200, description: () => `${description}: rows ${JSON.stringify(last)}` })
}

async function editor (room) {
  const { token } = await ok('POST', '/tokens', { json: { sub: 'ada', room, role: 'editor' } }, 201)
  const client = connectProvider(server.wsUrl, room, { params: { token } })
  await waitSynced(client)
  return client
}

const uri = (id) => `tandemx://asset/${id}`

before(async () => {
  if (SKIP) return
  server = await startServer({ vars: { ASSET_USAGE_SECONDS: '1' } })
  ;({ project, key } = await createProject(server, 'Asset usage'))
}, { timeout: 150_000 })

after(async () => {
  destroyAll()
  if (server) await server.stop()
})

test('a Y.Map node whose src is an asset shows in the usage, two references count 2, removing them removes the rows', { skip: SKIP, timeout: 90_000 }, async () => {
  const room = roomName('assets')
  const picture = await upload('picture.txt', `a picture ${room}`)
  const client = await editor(room)
  const board = client.doc.getMap('board')
  const node = new Y.Map()
  node.set('type', 'image')
  node.set('src', uri(picture))
  board.set('n1', node)
  await rowsBecome(room, { [picture]: 1 }, 'the reference recorded')
  const usage = await ok('GET', `/assets/${picture}/usage`)
  assert.deepEqual(usage.documents, [{ document: room, refs: 1 }])

  // A second reference, in text typed one character at a time, with a version; and an id the
  // library does not hold (recorded all the same: the document references it).
  const notes = client.doc.getText('notes')
  for (const c of `see ${uri(picture)}@1 and ${uri('ast_00000000000000000000')}`) notes.insert(notes.length, c)
  await rowsBecome(room, { [picture]: 2, ast_00000000000000000000: 1 }, 'two references count 2')
  assert.deepEqual((await ok('GET', `/assets/${picture}/usage`)).documents, [{ document: room, refs: 2 }])

  // An edit that leaves the set as it is writes nothing.
  const before = await updatedAt(room)
  notes.insert(0, 'unrelated ')
  await sleep(2_500)
  assert.equal(await updatedAt(room), before, 'the same set is not written again')

  board.delete('n1')
  notes.delete(0, notes.length)
  await rowsBecome(room, {}, 'the references removed')
  assert.deepEqual((await ok('GET', `/assets/${picture}/usage`)).documents, [])
})

test('a branch records its own references; deleting a document deletes its rows', { skip: SKIP, timeout: 90_000 }, async () => {
  const room = roomName('assets-doc')
  const id = await upload('logo.txt', `a logo ${room}`)
  const client = await editor(room)
  client.doc.getArray('layers').push([{ kind: 'image', src: uri(id) }])
  await rowsBecome(room, { [id]: 1 }, 'the parent recorded')

  const branch = roomName('assets-branch')
  await ok('POST', `/documents/${room}/branches`, { json: { name: branch } }, 201)
  await rowsBecome(branch, { [id]: 1 }, 'the branch recorded its own')
  // Removed on the branch only: the parent's rows stay.
  await ok('POST', `/documents/${branch}/edits`, { json: { ops: [{ op: 'array.delete', path: ['layers'], index: 0, length: 1 }] } })
  await rowsBecome(branch, {}, 'the branch no longer references it')
  assert.deepEqual(await documentAssets(room), { [id]: 1 })

  await ok('DELETE', `/documents/${room}`)
  // Gone with the deletion, not at a later scan.
  assert.deepEqual(await documentAssets(room), {})
  assert.deepEqual((await ok('GET', `/assets/${id}/usage`)).documents, [])
})

/** `updated_at` of the document's rows, read from the local D1 directly. */
async function updatedAt (room) {
  const out = await d1Execute(server, `SELECT group_concat(updated_at) AS at FROM asset_usage WHERE project_id = '${project}' AND document = '${room}'`)
  const at = out.match(/\d{13}(,\d{13})*/)
  assert.ok(at, out)
  return at[0]
}
