// History: automatic and named versions, diff, restore, session replay, the document at an
// instant, and branches that merge back, with stock y-websocket clients in the rooms.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { IS_REFERENCE, createProject, sleep, startServer, waitFor } from './server.mjs'
import { Y, connectProvider, destroyAll, destroyProvider, roomName, waitSynced } from './helpers.mjs'

const SKIP = IS_REFERENCE && 'the reference server has no history'

let server
let project
let key

// Short automatic-version interval, and a small inline limit so that large versions go to R2.
const VARS = { AUTO_VERSION_SECONDS: '2', VERSION_INLINE_BYTES: '4096' }

async function call (method, path, { auth = key, json, raw } = {}) {
  const headers = { authorization: `Bearer ${auth}` }
  let body
  if (json !== undefined) { headers['content-type'] = 'application/json'; body = JSON.stringify(json) }
  if (raw !== undefined) { headers['content-type'] = 'application/json'; body = raw }
  const res = await fetch(`${server.url}/v1/projects/${project}${path}`, { method, headers, body, signal: AbortSignal.timeout(20_000) })
  const type = res.headers.get('content-type') || ''
  const payload = type.includes('json') ? await res.json() : new Uint8Array(await res.arrayBuffer())
  return { status: res.status, body: payload }
}

async function ok (method, path, opts, status = 200) {
  const res = await call(method, path, opts)
  assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)}`)
  return res.body
}

async function token (room, role = 'editor', sub = `${role}-user`) {
  return (await ok('POST', '/tokens', { json: { sub, room, role } }, 201)).token
}

async function join (room, { role = 'editor', sub } = {}) {
  const p = connectProvider(server.wsUrl, room, { params: { token: await token(room, role, sub) } })
  await waitSynced(p)
  return p
}

/** Waits until the server's document has `content` (checks that a client's edits are stored). */
async function stored (room, check, description) {
  let last
  await waitFor(async () => {
    last = (await call('GET', `/documents/${room}`)).body.content
    return check(last)
  }, { description: `${description}; last: ${JSON.stringify(last)}` })
}

before(async () => {
  if (SKIP) return
  server = await startServer({ vars: VARS })
  ;({ project, key } = await createProject(server, 'History'))
}, { timeout: 150_000 })

after(async () => {
  destroyAll()
  if (server) await server.stop()
})

test('automatic versions: during activity on schedule, and when the last client leaves', { skip: SKIP, timeout: 60_000 }, async () => {
  const room = roomName('auto')
  const a = await join(room, { sub: 'ada' })
  a.doc.getText('t').insert(0, 'first')
  await stored(room, (c) => c.t === 'first', 'first edit stored')
  // The interval is 2 s: a version appears while the client is still connected.
  let versions
  await waitFor(async () => {
    versions = (await ok('GET', `/documents/${room}/versions`)).versions
    return versions.length >= 1
  }, { timeout: 15_000, description: 'an automatic version during activity' })
  assert.equal(versions[0].kind, 'auto')
  assert.equal(versions[0].author, 'room')
  assert.deepEqual(versions[0].authors, ['user:ada'])
  assert.equal(versions[0].storage, 'sql')
  const firstCount = versions.length

  a.doc.getText('t').insert(5, ' and last')
  await stored(room, (c) => c.t === 'first and last', 'second edit stored')
  destroyProvider(a)
  await waitFor(async () => {
    versions = (await ok('GET', `/documents/${room}/versions`)).versions
    return versions.length > firstCount
  }, { timeout: 15_000, description: 'a version when the room empties' })
  const newest = await ok('GET', `/documents/${room}/versions/${versions[0].id}`)
  assert.deepEqual(newest.content, { t: 'first and last' })
  // Nothing changed since: no more versions.
  await sleep(3000)
  assert.equal((await ok('GET', `/documents/${room}/versions`)).versions.length, versions.length)
})

test('named versions: create, list, read as JSON and as an update, delete; bad input is refused', { skip: SKIP, timeout: 60_000 }, async () => {
  const room = roomName('named')
  await ok('POST', `/documents/${room}/edits`, { json: { ops: [{ op: 'text.insert', path: ['body'], index: 0, text: 'Draft' }, { op: 'map.set', path: ['meta'], key: 'n', value: 1 }] } })
  const v = await ok('POST', `/documents/${room}/versions`, { json: { name: 'First draft', description: 'before review' } }, 201)
  assert.equal(v.kind, 'named')
  assert.equal(v.name, 'First draft')
  assert.equal(v.description, 'before review')
  assert.match(v.author, /^key_/)
  const list = await ok('GET', `/documents/${room}/versions`)
  assert.ok(list.versions.some((x) => x.id === v.id && x.name === 'First draft'))
  const read = await ok('GET', `/documents/${room}/versions/${v.id}`)
  assert.deepEqual(read.content, { body: 'Draft', meta: { n: 1 } })
  const bytes = await ok('GET', `/documents/${room}/versions/${v.id}/update`)
  const doc = new Y.Doc()
  Y.applyUpdate(doc, bytes)
  assert.equal(doc.getText('body').toString(), 'Draft')

  for (const [json, why] of [[{ name: '' }, 'empty name'], [{ name: 'x'.repeat(201) }, 'long name'], [{ name: 'a', colour: 'red' }, 'unknown field'], [{}, 'no name']]) {
    const res = await call('POST', `/documents/${room}/versions`, { json })
    assert.equal(res.status, 400, why)
    assert.equal(res.body.error, 'invalid-body', why)
  }
  assert.equal((await call('POST', `/documents/${room}/versions`, { raw: '{not json' })).status, 400)
  assert.equal((await call('GET', `/documents/${room}/versions/999`)).status, 404)
  assert.equal((await call('GET', `/documents/${room}/versions/abc`)).status, 404)
  assert.equal((await call('GET', `/documents/no-such-doc/versions`)).status, 404)
  // A viewer may read history but not write it.
  const viewer = await token(room, 'viewer')
  assert.equal((await call('GET', `/documents/${room}/versions`, { auth: viewer })).status, 200)
  assert.equal((await call('POST', `/documents/${room}/versions`, { auth: viewer, json: { name: 'nope' } })).status, 403)

  await ok('DELETE', `/documents/${room}/versions/${v.id}`)
  assert.equal((await call('GET', `/documents/${room}/versions/${v.id}`)).status, 404)
  assert.equal((await call('DELETE', `/documents/${room}/versions/${v.id}`)).status, 404)
  // An id is never given to another version, even once its version is deleted.
  const next = await ok('POST', `/documents/${room}/versions`, { json: { name: 'Second draft' } }, 201)
  assert.ok(next.id > v.id)
})

test('diff reports exactly the scripted changes and who made them', { skip: SKIP, timeout: 60_000 }, async () => {
  const room = roomName('diff')
  const a = await join(room, { sub: 'ada' })
  a.doc.getText('t').insert(0, 'Hello world')
  a.doc.getMap('m').set('a', 1)
  a.doc.getMap('m').set('b', 2)
  await stored(room, (c) => c.t === 'Hello world' && c.m?.b === 2, 'base stored')
  const v1 = await ok('POST', `/documents/${room}/versions`, { json: { name: 'v1' } }, 201)

  const b = await join(room, { sub: 'bob' })
  b.doc.getText('t').insert(6, 'big ')
  b.doc.getText('t').delete(0, 1)
  b.doc.getText('t').insert(0, 'J')
  b.doc.getMap('m').set('a', 10)
  b.doc.getMap('m').delete('b')
  b.doc.getMap('m').set('c', 'new')
  await stored(room, (c) => c.t === 'Jello big world' && c.m?.c === 'new', 'edits stored')
  const v2 = await ok('POST', `/documents/${room}/versions`, { json: { name: 'v2' } }, 201)

  const diff = await ok('GET', `/documents/${room}/diff?from=${v1.id}&to=${v2.id}`)
  assert.deepEqual(diff.authors, ['user:bob'])
  const roots = Object.fromEntries(diff.changes.roots.map((r) => [r.root, r]))
  assert.deepEqual(Object.keys(roots).sort(), ['m', 't'])
  assert.equal(roots.t.kind, 'text')
  // The text ops, applied to the old text, give the new one.
  const old = 'Hello world'
  let out = ''
  let pos = 0
  for (const op of roots.t.ops) {
    if (op.retain !== undefined) { out += old.slice(pos, pos + op.retain); pos += op.retain }
    if (op.insert !== undefined) out += op.insert
    if (op.delete !== undefined) { assert.equal(old.slice(pos, pos + op.delete.length), op.delete); pos += op.delete.length }
  }
  out += old.slice(pos)
  assert.equal(out, 'Jello big world')
  assert.equal(roots.t.inserted, 5)
  assert.equal(roots.t.deleted, 1)
  assert.equal(roots.m.kind, 'map')
  assert.deepEqual(roots.m.added, { c: 'new' })
  assert.deepEqual(roots.m.removed, { b: 2 })
  assert.deepEqual(roots.m.changed, { a: { before: 1, after: 10 } })

  // To the current state by default; an unchanged pair has no changes.
  const same = await ok('GET', `/documents/${room}/diff?from=${v2.id}`)
  assert.deepEqual(same.changes.roots, [])
  assert.equal((await call('GET', `/documents/${room}/diff`)).status, 400)
  assert.equal((await call('GET', `/documents/${room}/diff?from=zz`)).status, 400)
  assert.equal((await call('GET', `/documents/${room}/diff?from=12345`)).status, 404)
})

test('restore is a forward change every connected client converges to', { skip: SKIP, timeout: 60_000 }, async () => {
  const room = roomName('restore')
  const a = await join(room)
  const b = await join(room)
  a.doc.getText('t').insert(0, 'keep this text')
  a.doc.getMap('m').set('k', 'v1')
  await stored(room, (c) => c.t === 'keep this text' && c.m?.k === 'v1', 'base stored')
  const v1 = await ok('POST', `/documents/${room}/versions`, { json: { name: 'good' } }, 201)

  b.doc.getText('t').delete(0, 5)
  b.doc.getText('t').insert(0, 'LOST ')
  b.doc.getMap('m').set('k', 'v2')
  b.doc.getMap('m').set('extra', true)
  b.doc.getArray('later').push([1, 2])
  await stored(room, (c) => c.m?.extra === true && c.later?.length === 2, 'edits stored')

  const res = await ok('POST', `/documents/${room}/versions/${v1.id}/restore`)
  assert.equal(res.changed, true)
  assert.equal(res.version.kind, 'restore')
  const expected = { t: 'keep this text', m: { k: 'v1' }, later: [] }
  for (const p of [a, b]) {
    await waitFor(() => JSON.stringify(p.doc.getText('t').toString()) === JSON.stringify(expected.t) &&
      p.doc.getMap('m').get('k') === 'v1' && !p.doc.getMap('m').has('extra') && p.doc.getArray('later').length === 0,
    { description: 'client converged to the restored version' })
  }
  const content = (await ok('GET', `/documents/${room}`)).content
  assert.deepEqual(content, expected)
  // Restoring again changes nothing.
  const again = await ok('POST', `/documents/${room}/versions/${v1.id}/restore`)
  assert.equal(again.changed, false)
  // Clients keep editing after a restore.
  a.doc.getText('t').insert(0, '> ')
  await waitFor(() => b.doc.getText('t').toString() === '> keep this text', { description: 'edit after restore' })
})

test('a burst of changes is logged one entry per change, in order, each with its author', { skip: SKIP, timeout: 60_000 }, async () => {
  // Changes that arrive together are written together (several rows per statement, several
  // statements per commit): each must still be its own entry with its own time and author.
  const room = roomName('burst')
  const a = await join(room, { sub: 'ada' })
  const b = await join(room, { sub: 'bob' })
  for (let k = 0; k < 250; k++) {
    const who = k % 50 < 25 ? a : b
    who.doc.getText('t').insert(who.doc.getText('t').length, String.fromCharCode(97 + (k % 26)))
  }
  const text = (p) => p.doc.getText('t').toString()
  await waitFor(() => text(a).length === 250 && text(b) === text(a), { description: 'both clients have the burst' })
  const want = text(a)
  await stored(room, (c) => c.t === want, 'the burst stored')
  const all = await ok('GET', `/documents/${room}/history?limit=1000`)
  assert.equal(all.updates.length, 250)
  for (let i = 1; i < all.updates.length; i++) {
    assert.ok(all.updates[i].seq > all.updates[i - 1].seq, 'seq increases')
    assert.ok(all.updates[i].at >= all.updates[i - 1].at, 'time does not go back')
  }
  const count = (who) => all.updates.filter((u) => u.author === who).length
  assert.deepEqual([count('user:ada'), count('user:bob')], [125, 125])
  // Each entry holds its own change: replaying any prefix gives the text of that many changes.
  const replayed = new Y.Doc()
  all.updates.forEach((u, i) => {
    Y.applyUpdate(replayed, Buffer.from(u.update, 'base64'))
    assert.equal(replayed.getText('t').length, i + 1)
  })
  assert.equal(replayed.getText('t').toString(), want)
  destroyProvider(a)
  destroyProvider(b)
})

test('replay returns every update in order with time and author; the document at any instant', { skip: SKIP, timeout: 60_000 }, async () => {
  const room = roomName('replay')
  const a = await join(room, { sub: 'ada' })
  const marks = []
  for (const word of ['one', ' two', ' three', ' four']) {
    a.doc.getText('t').insert(a.doc.getText('t').length, word)
    const want = a.doc.getText('t').toString()
    await stored(room, (c) => c.t === want, `"${want}" stored`)
    marks.push({ at: Date.now(), text: want })
    await sleep(30)
  }
  const all = await ok('GET', `/documents/${room}/history`)
  assert.equal(all.updates.length, 4)
  assert.deepEqual(all.updates.map((u) => u.seq), [...all.updates.map((u) => u.seq)].sort((x, y) => x - y))
  assert.ok(all.updates.every((u) => u.author === 'user:ada' && typeof u.at === 'number'))
  const replayed = new Y.Doc()
  for (const u of all.updates) Y.applyUpdate(replayed, Buffer.from(u.update, 'base64'))
  assert.equal(replayed.getText('t').toString(), 'one two three four')

  // Pages follow next_after.
  const page1 = await ok('GET', `/documents/${room}/history?limit=3`)
  assert.equal(page1.updates.length, 3)
  const page2 = await ok('GET', `/documents/${room}/history?limit=3&after=${page1.next_after}`)
  assert.deepEqual([...page1.updates, ...page2.updates].map((u) => u.seq), all.updates.map((u) => u.seq))
  assert.equal(page2.next_after, null)
  // A time range.
  const ranged = await ok('GET', `/documents/${room}/history?from=${all.updates[1].at}&to=${all.updates[2].at}`)
  assert.deepEqual(ranged.updates.map((u) => u.seq), [all.updates[1].seq, all.updates[2].seq])

  for (const mark of marks) {
    const at = await ok('GET', `/documents/${room}/history/at?t=${mark.at}`)
    assert.equal(at.content.t, mark.text)
  }
  const before = await ok('GET', `/documents/${room}/history/at?t=${all.updates[0].at - 1}`)
  assert.deepEqual(before.content, {})
  const asUpdate = await ok('GET', `/documents/${room}/history/at?t=${marks[1].at}&format=update`)
  const d = new Y.Doc()
  Y.applyUpdate(d, asUpdate)
  assert.equal(d.getText('t').toString(), 'one two')
  assert.equal((await call('GET', `/documents/${room}/history/at`)).status, 400)
  assert.equal((await call('GET', `/documents/${room}/history/at?t=soon`)).status, 400)
  assert.equal((await call('GET', `/documents/${room}/history/at?t=1&format=xml`)).status, 400)
  assert.equal((await call('GET', `/documents/${room}/history?limit=-1`)).status, 400)
})

test('branches: fork, edit both sides, preview, merge the union back, list divergence', { skip: SKIP, timeout: 90_000 }, async () => {
  const parentRoom = roomName('parent')
  const branchRoom = roomName('branch')
  const p = await join(parentRoom, { sub: 'ada' })
  p.doc.getText('t').insert(0, 'shared start')
  p.doc.getMap('m').set('base', 1)
  await stored(parentRoom, (c) => c.t === 'shared start', 'parent stored')

  const branch = await ok('POST', `/documents/${parentRoom}/branches`, { json: { name: branchRoom } }, 201)
  assert.equal(branch.parent, parentRoom)
  assert.equal(branch.name, branchRoom)
  assert.deepEqual((await ok('GET', `/documents/${branchRoom}`)).content, { t: 'shared start', m: { base: 1 } })

  const q = await join(branchRoom, { sub: 'bob' })
  q.doc.getText('t').insert(12, ' + branch')
  q.doc.getMap('m').set('from_branch', true)
  p.doc.getText('t').insert(0, 'parent: ')
  await stored(branchRoom, (c) => c.t === 'shared start + branch', 'branch edit stored')
  await stored(parentRoom, (c) => c.t === 'parent: shared start', 'parent edit stored')

  const listed = await ok('GET', `/documents/${parentRoom}/branches`)
  assert.equal(listed.branches.length, 1)
  assert.equal(listed.branches[0].name, branchRoom)
  assert.ok(listed.branches[0].ahead >= 1, JSON.stringify(listed))
  assert.ok(listed.branches[0].behind >= 1, JSON.stringify(listed))

  const preview = await ok('GET', `/documents/${branchRoom}/merge`)
  assert.deepEqual(preview.authors, ['user:bob'])
  const roots = Object.fromEntries(preview.changes.roots.map((r) => [r.root, r]))
  assert.equal(roots.t.inserted, ' + branch'.length)
  assert.deepEqual(roots.m.added, { from_branch: true })
  // The preview changed nothing.
  assert.equal((await ok('GET', `/documents/${parentRoom}`)).content.t, 'parent: shared start')

  const merged = await ok('POST', `/documents/${branchRoom}/merge`)
  assert.equal(merged.changed, true)
  assert.equal(merged.version.kind, 'merge')
  await waitFor(() => p.doc.getText('t').toString() === 'parent: shared start + branch' && p.doc.getMap('m').get('from_branch') === true,
    { description: 'the parent client has the union' })
  const versions = (await ok('GET', `/documents/${parentRoom}/versions`)).versions
  assert.ok(versions.some((v) => v.kind === 'merge' && v.name === `Merged branch ${branchRoom}`))
  const again = await ok('POST', `/documents/${branchRoom}/merge`)
  assert.equal(again.changed, false)

  // A branch from a version starts from that version's content.
  const v = await ok('POST', `/documents/${parentRoom}/versions`, { json: { name: 'snap' } }, 201)
  p.doc.getText('t').insert(0, 'after snap ')
  await stored(parentRoom, (c) => c.t.startsWith('after snap '), 'post-version edit stored')
  const old = roomName('from-version')
  await ok('POST', `/documents/${parentRoom}/branches`, { json: { name: old, version: v.id } }, 201)
  assert.equal((await ok('GET', `/documents/${old}`)).content.t, 'parent: shared start + branch')

  // Bad input.
  assert.equal((await call('POST', `/documents/${parentRoom}/branches`, { json: { name: branchRoom } })).status, 409)
  assert.equal((await call('POST', `/documents/${parentRoom}/branches`, { json: { name: 'bad name!' } })).status, 400)
  assert.equal((await call('POST', `/documents/${parentRoom}/branches`, { json: { name: roomName('x'), version: 9999 } })).status, 404)
  assert.equal((await call('GET', `/documents/${parentRoom}/merge`)).status, 400, 'a document that is not a branch')
  // A preview shows the parent's content: a token for the branch alone is not enough.
  const branchViewer = await token(branchRoom, 'viewer')
  assert.equal((await call('GET', `/documents/${branchRoom}/merge`, { auth: branchViewer })).status, 403, 'a token without the parent')
  const viewer = await token('*', 'viewer')
  assert.equal((await call('GET', `/documents/${branchRoom}/merge`, { auth: viewer })).status, 200, 'a viewer of both may preview')
  // A room token branches and merges only within the rooms it covers: a token for the parent
  // alone can neither fork into another name nor merge from the branch.
  for (const [method, path, json] of [['POST', `/documents/${branchRoom}/merge`], ['POST', `/documents/${parentRoom}/branches`, { name: roomName('by-token') }]]) {
    const res = await call(method, path, { auth: await token(parentRoom, 'owner'), json })
    assert.equal(res.status, 403, `${method} ${path} with a token for the parent alone`)
  }
  const viewerFork = await call('POST', `/documents/${parentRoom}/branches`, { auth: viewer, json: { name: roomName('by-viewer') } })
  assert.equal(viewerFork.status, 403, 'a viewer cannot fork')
  // An editor's token for every room forks and merges, as a demo app signed in with one does.
  const editor = await token('*', 'editor')
  const byToken = roomName('by-token')
  const forked = await call('POST', `/documents/${parentRoom}/branches`, { auth: editor, json: { name: byToken } })
  assert.equal(forked.status, 201, 'an editor token for every room forks')
  assert.equal((await call('POST', `/documents/${byToken}/merge`, { auth: editor })).status, 200, 'and merges')
})

test('a large version goes to R2 and reads back whole', { skip: SKIP, timeout: 60_000 }, async () => {
  const room = roomName('large')
  const text = 'lorem ipsum dolor sit amet '.repeat(2000)
  await ok('POST', `/documents/${room}/edits`, { json: { ops: [{ op: 'text.insert', path: ['t'], index: 0, text }] } })
  const v = await ok('POST', `/documents/${room}/versions`, { json: { name: 'big' } }, 201)
  assert.equal(v.storage, 'r2')
  assert.ok(v.bytes > 4096)
  assert.equal((await ok('GET', `/documents/${room}/versions/${v.id}`)).content.t, text)
  await ok('POST', `/documents/${room}/edits`, { json: { ops: [{ op: 'text.delete', path: ['t'], index: 0, length: 1000 }] } })
  const restored = await ok('POST', `/documents/${room}/versions/${v.id}/restore`)
  assert.equal(restored.changed, true)
  assert.equal((await ok('GET', `/documents/${room}`)).content.t, text)
})

test('retention is a project setting, checked', { skip: SKIP }, async () => {
  const set = await ok('PATCH', '', { json: { history_retention_days: 7 } })
  assert.equal(set.history_retention_days, 7)
  assert.equal((await ok('GET', '')).history_retention_days, 7)
  const reset = await ok('PATCH', '', { json: { history_retention_days: null } })
  assert.equal(reset.history_retention_days, null)
  for (const json of [{ history_retention_days: -1 }, { history_retention_days: 36501 }, { history_retention_days: 'week' }, { retention: 1 }]) {
    const res = await call('PATCH', '', { json })
    assert.equal(res.status, 400, JSON.stringify(json))
  }
})

test('history of a deleted document is gone with it', { skip: SKIP }, async () => {
  const room = roomName('gone')
  await ok('POST', `/documents/${room}/edits`, { json: { ops: [{ op: 'text.insert', path: ['t'], index: 0, text: 'x' }] } })
  await ok('POST', `/documents/${room}/versions`, { json: { name: 'v' } }, 201)
  await ok('DELETE', `/documents/${room}`)
  assert.equal((await call('GET', `/documents/${room}/versions`)).status, 410)
})

test('versions, the log and branches survive a restart', { skip: SKIP, timeout: 150_000 }, async () => {
  const room = roomName('restart')
  const branchRoom = roomName('restart-branch')
  await ok('POST', `/documents/${room}/edits`, { json: { ops: [{ op: 'text.insert', path: ['t'], index: 0, text: 'before restart' }] } })
  const v = await ok('POST', `/documents/${room}/versions`, { json: { name: 'kept' } }, 201)
  await ok('POST', `/documents/${room}/branches`, { json: { name: branchRoom } }, 201)
  const log = (await ok('GET', `/documents/${room}/history`)).updates
  server = await server.restart()
  const versions = (await ok('GET', `/documents/${room}/versions`)).versions
  assert.ok(versions.some((x) => x.id === v.id && x.name === 'kept'))
  assert.equal((await ok('GET', `/documents/${room}/versions/${v.id}`)).content.t, 'before restart')
  assert.deepEqual((await ok('GET', `/documents/${room}/history`)).updates, log)
  assert.equal((await ok('GET', `/documents/${room}/branches`)).branches[0].name, branchRoom)
})
