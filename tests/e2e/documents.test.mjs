// The HTTP document API: read a document as JSON or as a Yjs update, write a Yjs update or
// JSON edit operations, with stock y-websocket clients connected to the same room.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { IS_REFERENCE, createProject, startServer, waitFor } from './server.mjs'
import { Y, connectProvider, destroyAll, roomName, waitSynced } from './helpers.mjs'

const SKIP = IS_REFERENCE && 'the reference server has no HTTP API'

let server
let project
let key

async function call (method, path, { auth = key, json, bytes } = {}) {
  const headers = { authorization: `Bearer ${auth}` }
  let body
  if (json !== undefined) { headers['content-type'] = 'application/json'; body = JSON.stringify(json) }
  if (bytes !== undefined) { headers['content-type'] = 'application/octet-stream'; body = bytes }
  const res = await fetch(`${server.url}/v1/projects/${project}${path}`, { method, headers, body, signal: AbortSignal.timeout(10_000) })
  const type = res.headers.get('content-type') || ''
  const payload = type.includes('json') ? await res.json() : new Uint8Array(await res.arrayBuffer())
  return { status: res.status, body: payload, type }
}

async function token (room, role) {
  const res = await call('POST', '/tokens', { json: { sub: `${role}-user`, room, role } })
  assert.equal(res.status, 201, JSON.stringify(res.body))
  return res.body.token
}

before(async () => {
  if (SKIP) return
  server = await startServer()
  ;({ project, key } = await createProject(server, 'Documents'))
}, { timeout: 150_000 })

after(async () => {
  destroyAll()
  if (server) await server.stop()
})

test('JSON edits reach connected clients, and the document reads back as JSON', { skip: SKIP, timeout: 60_000 }, async () => {
  const room = roomName('api')
  const client = connectProvider(server.wsUrl, room, { params: { token: await token(room, 'editor') } })
  await waitSynced(client)
  client.doc.getText('notes').insert(0, 'from the browser')
  client.doc.getMap('board').set('color', 'blue')
  await waitFor(async () => (await call('GET', `/documents/${room}`)).body.content?.notes === 'from the browser', { description: 'client edit visible over HTTP' })

  const res = await call('POST', `/documents/${room}/edits`, {
    json: {
      ops: [
        { op: 'text.insert', path: ['notes'], index: 0, text: 'Bot: ' },
        { op: 'map.set', path: ['board'], key: 'size', value: 3 },
        { op: 'array.push', path: ['log'], values: [{ at: 1, what: 'edited' }] }
      ]
    }
  })
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.equal(res.body.changed, true)
  await waitFor(() => client.doc.getText('notes').toString() === 'Bot: from the browser', { description: 'text edit reaches the client' })
  await waitFor(() => client.doc.getMap('board').get('size') === 3, { description: 'map edit reaches the client' })
  assert.deepEqual(client.doc.getArray('log').toJSON(), [{ at: 1, what: 'edited' }])

  const read = await call('GET', `/documents/${room}`)
  assert.equal(read.status, 200)
  assert.deepEqual(read.body, {
    name: room,
    content: { notes: 'Bot: from the browser', board: { color: 'blue', size: 3 }, log: [{ at: 1, what: 'edited' }] }
  })
})

test('a failing operation applies nothing: 409 when it does not fit the document, 400 when malformed', { skip: SKIP }, async () => {
  const room = roomName('api-bad')
  await call('POST', `/documents/${room}/edits`, { json: { ops: [{ op: 'text.insert', path: ['t'], index: 0, text: 'keep' }] } })
  for (const json of [
    { ops: [{ op: 'text.insert', path: ['t'], index: 0, text: 'lost' }, { op: 'text.delete', path: ['t'], index: 0, length: 99 }] },
    { ops: [{ op: 'text.insert', path: ['t'], index: 0, text: 'lost' }, { op: 'map.set', path: ['t'], key: 'k', value: 1 }] }
  ]) {
    const res = await call('POST', `/documents/${room}/edits`, { json })
    assert.equal(res.status, 409, JSON.stringify(res.body))
    assert.equal(res.body.error, 'conflict')
  }
  for (const json of [
    { ops: [] },
    { ops: [{ op: 'explode', path: ['t'] }] },
    { nope: 1 }
  ]) {
    const res = await call('POST', `/documents/${room}/edits`, { json })
    assert.equal(res.status, 400, JSON.stringify(res.body))
    assert.equal(res.body.error, 'invalid-body')
  }
  assert.deepEqual((await call('GET', `/documents/${room}`)).body.content, { t: 'keep' })
})

test('binary updates: read whole or from a state vector, v1 or v2; write one', { skip: SKIP, timeout: 60_000 }, async () => {
  const room = roomName('api-bin')
  const author = new Y.Doc()
  author.getText('t').insert(0, 'first part')
  const write = await call('POST', `/documents/${room}/update`, { bytes: Y.encodeStateAsUpdate(author) })
  assert.equal(write.status, 200, JSON.stringify(write.body))
  const listener = connectProvider(server.wsUrl, room, { params: { token: await token(room, 'viewer') } })
  await waitSynced(listener)
  assert.equal(listener.doc.getText('t').toString(), 'first part')

  // Read it all back into a fresh document.
  const whole = await call('GET', `/documents/${room}/update`)
  assert.equal(whole.type, 'application/octet-stream')
  const copy = new Y.Doc()
  Y.applyUpdate(copy, whole.body)
  assert.equal(copy.getText('t').toString(), 'first part')

  // A second author writes; reading from the copy's state vector returns only that.
  const second = new Y.Doc()
  Y.applyUpdate(second, whole.body)
  second.getText('t').insert(10, ', second part')
  await call('POST', `/documents/${room}/update`, { bytes: Y.encodeStateAsUpdate(second, Y.encodeStateVector(copy)) })
  await waitFor(() => listener.doc.getText('t').toString() === 'first part, second part', { description: 'binary write reaches clients' })
  const sv = Buffer.from(Y.encodeStateVector(copy)).toString('base64url')
  const missing = await call('GET', `/documents/${room}/update?state_vector=${sv}`)
  assert.ok(missing.body.length < (await call('GET', `/documents/${room}/update`)).body.length, 'only the missing part')
  Y.applyUpdate(copy, missing.body)
  assert.equal(copy.getText('t').toString(), 'first part, second part')

  const v2 = await call('GET', `/documents/${room}/update?format=v2`)
  const fromV2 = new Y.Doc()
  Y.applyUpdateV2(fromV2, v2.body)
  assert.equal(fromV2.getText('t').toString(), 'first part, second part')

  assert.equal((await call('POST', `/documents/${room}/update`, { bytes: new Uint8Array([1, 2, 3]) })).status, 400)
  assert.equal((await call('GET', `/documents/${room}/update?state_vector=%%%`)).status, 400)
  assert.equal((await call('GET', `/documents/${room}/update?format=v3`)).status, 400)
})

test('roles apply: a viewer token reads but cannot write; unknown documents are 404', { skip: SKIP }, async () => {
  const room = roomName('api-roles')
  await call('POST', `/documents/${room}/edits`, { json: { ops: [{ op: 'map.set', path: ['m'], key: 'k', value: 'v' }] } })
  const viewer = await token(room, 'viewer')
  const read = await call('GET', `/documents/${room}`, { auth: viewer })
  assert.equal(read.status, 200)
  assert.deepEqual(read.body.content, { m: { k: 'v' } })
  const denied = await call('POST', `/documents/${room}/edits`, { auth: viewer, json: { ops: [{ op: 'map.set', path: ['m'], key: 'k', value: 'x' }] } })
  assert.equal(denied.status, 403)
  assert.equal(denied.body.error, 'forbidden')
  const editor = await token(room, 'editor')
  assert.equal((await call('POST', `/documents/${room}/edits`, { auth: editor, json: { ops: [{ op: 'map.set', path: ['m'], key: 'k', value: 'y' }] } })).status, 200)
  // A token for another room does not open this one.
  const other = await token('elsewhere', 'owner')
  assert.equal((await call('GET', `/documents/${room}`, { auth: other })).status, 403)
  assert.equal((await call('GET', `/documents/${roomName('never')}`)).status, 404)
  const audit = await call('GET', '/audit')
  assert.ok(audit.body.events.some((e) => e.action === 'document.updated' && e.actor === 'user:editor-user' && e.target === room))
})

test('the OpenAPI document is served, matches docs/openapi.json, and describes what is routed', { skip: SKIP }, async () => {
  const { readFileSync } = await import('node:fs')
  const { REPO_ROOT } = await import('./server.mjs')
  const res = await fetch(`${server.url}/v1/openapi.json`)
  assert.equal(res.status, 200)
  const served = await res.json()
  const committed = JSON.parse(readFileSync(`${REPO_ROOT}docs/openapi.json`, 'utf8'))
  assert.deepEqual(served, committed)
  assert.equal(served.openapi, '3.1.0')
  // Every described operation is routed: called without credentials it never answers
  // "no such route" or "method not allowed".
  for (const [path, ops] of Object.entries(served.paths)) {
    for (const method of Object.keys(ops)) {
      const url = `${server.url}${path.replace(/\{[^}]+\}/g, 'x')}`
      const r = await fetch(url, { method: method.toUpperCase() })
      const body = await r.text()
      assert.ok(![404, 405].includes(r.status) || !/no such route|does not accept/.test(body), `${method} ${path}: ${r.status} ${body}`)
    }
  }
})
