// Conversations: threads anchored in text typed by a stock provider, which follow their words
// through edits, orphan when the words go and come back on undo; mentions filling the inbox and
// a notification webhook held for the project's delay; reactions, chat, roles; reviews that
// gate a merge; the activity feed; live events for clients that ask and none for stock ones.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Webhook } from 'standardwebhooks'
import { IS_REFERENCE, createProject, sleep, startServer, waitFor } from './server.mjs'
import { Y, connectProvider, destroyAll, openRaw, roomName, startReceiver, tryUpgrade, waitSynced } from './helpers.mjs'

const SKIP = IS_REFERENCE && 'the reference server has no conversations'

let server
let project
let key
let receiver

async function call (method, path, { auth = key, json, subject } = {}) {
  const headers = { authorization: `Bearer ${auth}` }
  if (subject) headers['tandemx-subject'] = subject
  let body
  if (json !== undefined) { headers['content-type'] = 'application/json'; body = JSON.stringify(json) }
  const res = await fetch(`${server.url}/v1/projects/${project}${path}`, { method, headers, body, signal: AbortSignal.timeout(20_000) })
  const type = res.headers.get('content-type') || ''
  return { status: res.status, body: type.includes('json') ? await res.json() : await res.text() }
}

async function ok (method, path, opts, status = 200) {
  const res = await call(method, path, opts)
  assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)}`)
  return res.body
}

async function token (room, role, sub) {
  return (await ok('POST', '/tokens', { json: { sub, room, role } }, 201)).token
}

const text = (s) => ({ content: [{ type: 'paragraph', children: [{ text: s }] }] })
const mentioning = (s, user) => ({ content: [{ type: 'paragraph', children: [{ text: s }, { type: 'mention', user }] }] })
const b64 = (bytes) => Buffer.from(bytes).toString('base64')

/** Reads a lib0 varuint at `at` of `bytes`: [value, next position]. */
function varuint (bytes, at) {
  let n = 0
  let mult = 1
  for (;;) {
    const b = bytes[at++]
    n += (b & 0x7f) * mult
    if (b < 0x80) return [n, at]
    mult *= 128
  }
}

/** The JSON of a conversation event frame: varuint 100, varstring JSON. */
function eventOf (frame) {
  const [, afterType] = varuint(frame, 0)
  const [len, start] = varuint(frame, afterType)
  return JSON.parse(Buffer.from(frame.subarray(start, start + len)).toString())
}

/** A text anchor for [from, to) of `ytext`, as the SDK's helper makes it. */
function anchor (ytext, from, to) {
  return {
    type: 'text',
    start: b64(Y.encodeRelativePosition(Y.createRelativePositionFromTypeIndex(ytext, from, 0))),
    end: b64(Y.encodeRelativePosition(Y.createRelativePositionFromTypeIndex(ytext, to, -1)))
  }
}

before(async () => {
  if (SKIP) return
  receiver = await startReceiver()
  server = await startServer({ vars: { WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_RETRY_BASE_MS: '300', AUTO_VERSION_SECONDS: '2' } })
  ;({ project, key } = await createProject(server, 'Conversations'))
  for (const [sub, role] of [['ed', 'editor'], ['cora', 'commenter'], ['vik', 'viewer'], ['mo', 'commenter'], ['rev', 'editor'], ['own', 'owner']]) {
    await ok('PUT', `/members/${sub}`, { json: { role } }, 201)
  }
}, { timeout: 150_000 })

after(async () => {
  destroyAll()
  receiver?.close()
  await server?.stop()
})

test('a thread on typed text follows its words, orphans when they go and comes back on undo', { skip: SKIP, timeout: 60_000 }, async () => {
  const room = roomName('anchor')
  const editorDoc = new Y.Doc()
  const editor = connectProvider(server.wsUrl, room, { doc: editorDoc, params: { token: await token(room, 'editor', 'ed') } })
  await waitSynced(editor)
  const ytext = editorDoc.getText('body')
  ytext.insert(0, 'the quick brown fox')
  // The commenter's client (read-only on the document) sees the text and anchors "brown".
  const commenterDoc = new Y.Doc()
  const commenter = connectProvider(server.wsUrl, room, { doc: commenterDoc, params: { token: await token(room, 'commenter', 'cora') } })
  await waitSynced(commenter)
  await waitFor(() => commenterDoc.getText('body').toString() === 'the quick brown fox', { description: 'the commenter sees the text' })
  const cora = await token(room, 'commenter', 'cora')
  const made = await ok('POST', `/documents/${room}/threads`, { auth: cora, json: { anchor: anchor(commenterDoc.getText('body'), 10, 15), body: text('Which brown?') } }, 201)
  assert.equal(made.position.quote, 'brown')
  assert.equal(made.position.index, 10)
  assert.equal(made.created_by, 'cora')
  assert.equal(made.comments.length, 1)

  // The editor inserts text before the range (with a character of two UTF-16 units).
  ytext.insert(0, '🦊 says: ')
  const read = async () => (await ok('GET', `/documents/${room}/threads/${made.id}`, { auth: cora })).position
  await waitFor(async () => (await read()).index === 19, { description: 'the range moved with the insert' })
  assert.equal((await read()).quote, 'brown')

  // Deleting the words orphans the thread; the editor's undo brings it back.
  const undo = new Y.UndoManager(ytext)
  ytext.delete(19, 6)
  await waitFor(async () => (await read()).orphaned === true, { description: 'orphaned once the words are gone' })
  undo.undo()
  assert.ok(ytext.toString().includes('brown'))
  await waitFor(async () => (await read()).orphaned === false, { description: 'restored by undo' })
  assert.equal((await read()).quote, 'brown')
  // Listed too, with its position.
  const list = await ok('GET', `/documents/${room}/threads`, { auth: cora })
  assert.equal(list.threads.length, 1)
  assert.equal(list.threads[0].position.quote, 'brown')

  // A range that names no text of the document is refused, as is a malformed position.
  const bad = await call('POST', `/documents/${room}/threads`, { auth: cora, json: { anchor: { type: 'text', start: b64([0, 99, 99, 0]), end: b64([0, 99, 99, 0]) }, body: text('x') } })
  assert.equal(bad.status, 400, JSON.stringify(bad.body))
  const garbage = await call('POST', `/documents/${room}/threads`, { auth: cora, json: { anchor: { type: 'text', start: 'AAAA', end: '////' }, body: text('x') } })
  assert.equal(garbage.status, 400)

  // The activity feed: the thread, and the editor's typing gathered by an automatic version.
  const feed = await waitFor(async () => {
    const entries = (await ok('GET', `/documents/${room}/activity`, { auth: cora })).activity
    return entries.some((a) => a.kind === 'document.edited' && a.actor === 'ed') && entries
  }, { timeout: 30_000, description: 'coalesced edits of the editor in the feed' })
  assert.ok(feed.some((a) => a.kind === 'thread.created' && a.actor === 'cora'))
  assert.ok(feed.find((a) => a.kind === 'document.edited').detail.version > 0)
})

test('roles: a viewer reads but cannot comment; a commenter comments but cannot edit the document', { skip: SKIP, timeout: 30_000 }, async () => {
  const room = roomName('roles')
  await ok('POST', `/documents/${room}/edits`, { json: { ops: [{ op: 'text.insert', path: ['t'], index: 0, text: 'hello' }] } })
  const viewer = await token(room, 'viewer', 'vik')
  const cora = await token(room, 'commenter', 'cora')
  const mo = await token(room, 'commenter', 'mo')
  const ed = await token(room, 'editor', 'ed')
  const denied = await call('POST', `/documents/${room}/threads`, { auth: viewer, json: { anchor: { type: 'document' }, body: text('hi') } })
  assert.equal(denied.status, 403, JSON.stringify(denied.body))
  const t = await ok('POST', `/documents/${room}/threads`, { auth: cora, json: { anchor: { type: 'point', x: 10, y: 20 }, body: text('here') } }, 201)
  assert.equal((await ok('GET', `/documents/${room}/threads`, { auth: viewer })).threads.length, 1, 'a viewer reads threads')
  const edit = await call('POST', `/documents/${room}/edits`, { auth: cora, json: { ops: [{ op: 'text.insert', path: ['t'], index: 0, text: 'x' }] } })
  assert.equal(edit.status, 403, 'a commenter still cannot change the document')
  // Own comments only; another commenter cannot resolve; an editor can.
  const c = t.comments[0].id
  assert.equal((await call('PATCH', `/documents/${room}/threads/${t.id}/comments/${c}`, { auth: mo, json: { body: text('mine now') } })).status, 403)
  assert.equal((await call('PATCH', `/documents/${room}/threads/${t.id}`, { auth: mo, json: { resolved: true } })).status, 403)
  const resolved = await ok('PATCH', `/documents/${room}/threads/${t.id}`, { auth: ed, json: { resolved: true } })
  assert.equal(resolved.resolved.by, 'ed')
  const edited = await ok('PATCH', `/documents/${room}/threads/${t.id}/comments/${c}`, { auth: cora, json: { body: text('here, exactly') } })
  assert.ok(edited.edited_at)
  // Bad input: unknown thread, non-numeric id, HTML body, bad emoji.
  assert.equal((await call('GET', `/documents/${room}/threads/999999`, { auth: viewer })).status, 404)
  assert.equal((await call('GET', `/documents/${room}/threads/abc`, { auth: viewer })).status, 404)
  assert.equal((await call('POST', `/documents/${room}/threads/${t.id}/comments`, { auth: cora, json: { body: { html: '<b>x</b>' } } })).status, 400)
  assert.equal((await call('PUT', `/documents/${room}/threads/${t.id}/comments/${c}/reactions/${encodeURIComponent('two words')}`, { auth: cora })).status, 400)
  // An integration acts through a key for a named member, within that member's role.
  const byKey = await call('POST', `/documents/${room}/threads/${t.id}/comments`, { subject: 'vik', json: { body: text('as the viewer') } })
  assert.equal(byKey.status, 403, 'a key acting for a viewer cannot comment')
  const bot = await ok('POST', `/documents/${room}/threads/${t.id}/comments`, { subject: 'mo', json: { body: text('as mo') } }, 201)
  assert.equal(bot.author, 'mo')
})

test('reactions are idempotent per user and emoji', { skip: SKIP, timeout: 30_000 }, async () => {
  const room = roomName('react')
  await ok('POST', `/documents/${room}/edits`, { json: { ops: [{ op: 'text.insert', path: ['t'], index: 0, text: 'x' }] } })
  const cora = await token(room, 'commenter', 'cora')
  const t = await ok('POST', `/documents/${room}/threads`, { auth: cora, json: { anchor: { type: 'document' }, body: text('hi') } }, 201)
  const path = `/documents/${room}/threads/${t.id}/comments/${t.comments[0].id}/reactions/${encodeURIComponent('👍')}`
  await ok('PUT', path, { auth: cora })
  const twice = await ok('PUT', path, { auth: cora })
  assert.deepEqual(twice.reactions['👍'], ['cora'])
  await ok('DELETE', path, { auth: cora })
  const gone = await ok('DELETE', path, { auth: cora })
  assert.equal(gone.reactions['👍'], undefined)
})

test('chat pages backwards', { skip: SKIP, timeout: 30_000 }, async () => {
  const room = roomName('chat')
  await ok('POST', `/documents/${room}/edits`, { json: { ops: [{ op: 'text.insert', path: ['t'], index: 0, text: 'x' }] } })
  const cora = await token(room, 'commenter', 'cora')
  for (let i = 0; i < 5; i++) await ok('POST', `/documents/${room}/chat`, { auth: cora, json: { body: text(`m${i}`) } }, 201)
  const first = await ok('GET', `/documents/${room}/chat?limit=2`, { auth: cora })
  assert.deepEqual(first.messages.map((m) => m.body.content[0].children[0].text), ['m4', 'm3'])
  const rest = await ok('GET', `/documents/${room}/chat?limit=10&before=${first.next_before}`, { auth: cora })
  assert.deepEqual(rest.messages.map((m) => m.body.content[0].children[0].text), ['m2', 'm1', 'm0'])
  assert.equal(rest.next_before, null)
  // Since and before together: the messages between the two, oldest first.
  const between = await ok('GET', `/documents/${room}/chat?since=${rest.messages[2].id}&before=${first.messages[1].id}`, { auth: cora })
  assert.deepEqual(between.messages.map((m) => m.body.content[0].children[0].text), ['m1', 'm2'])
})

test('a mention fills the inbox; the notification webhook waits for the delay and is dropped when read first', { skip: SKIP, timeout: 60_000 }, async () => {
  await ok('PATCH', '', { json: { notification_delay_seconds: 2 } })
  const hook = await ok('POST', '/webhooks', { json: { url: `${receiver.url}/notify`, events: ['notification.created', 'comment.created'] } }, 201)
  const room = roomName('mention')
  await ok('POST', `/documents/${room}/edits`, { json: { ops: [{ op: 'text.insert', path: ['t'], index: 0, text: 'x' }] } })
  const cora = await token(room, 'commenter', 'cora')
  const moToken = await token('*', 'commenter', 'mo')
  // A mention of someone who is not a member is refused, and nothing is written.
  const stranger = await call('POST', `/documents/${room}/threads`, { auth: cora, json: { anchor: { type: 'document' }, body: mentioning('hey ', 'nobody') } })
  assert.equal(stranger.status, 400, JSON.stringify(stranger.body))
  assert.equal((await ok('GET', `/documents/${room}/threads`, { auth: cora })).threads.length, 0)

  const t = await ok('POST', `/documents/${room}/threads`, { auth: cora, json: { anchor: { type: 'document' }, body: mentioning('please look, ', 'mo') } }, 201)
  const count = await ok('GET', '/inbox/count', { auth: moToken })
  assert.equal(count.unread, 1)
  const inbox = await ok('GET', '/inbox?unread=true', { auth: moToken })
  assert.equal(inbox.notifications[0].kind, 'mention')
  assert.equal(inbox.notifications[0].thread, t.id)
  assert.equal(inbox.notifications[0].actor, 'cora')
  // Unread for longer than the delay: the webhook goes, signed.
  const sent = await waitFor(() => receiver.requests.find((r) => r.path === '/notify' && JSON.parse(r.body).type === 'notification.created'), { timeout: 20_000, description: 'notification.created after the delay' })
  const payload = new Webhook(hook.secret).verify(sent.body, { 'webhook-id': sent.headers['webhook-id'], 'webhook-timestamp': sent.headers['webhook-timestamp'], 'webhook-signature': sent.headers['webhook-signature'] })
  assert.equal(payload.data.user, 'mo')
  assert.equal(payload.data.id, inbox.notifications[0].id)
  assert.ok(sent.at - Date.parse(payload.timestamp) >= -1000)
  // Read at once: no webhook for it. (Replies to the thread now reach mo as a participant.)
  await ok('POST', `/documents/${room}/threads/${t.id}/comments`, { auth: cora, json: { body: mentioning('again ', 'mo') } }, 201)
  const second = (await ok('GET', '/inbox?unread=true', { auth: moToken })).notifications[0]
  const read = await ok('POST', '/inbox/read', { auth: moToken, json: { ids: [second.id] } })
  assert.equal(read.unread, 1, 'the first one is still unread')
  await sleep(4_000)
  const notified = receiver.requests.filter((r) => r.path === '/notify' && JSON.parse(r.body).type === 'notification.created').map((r) => JSON.parse(r.body).data.id)
  assert.ok(!notified.includes(second.id), 'read before the delay: no webhook')
  assert.equal((await ok('POST', '/inbox/read', { auth: moToken, json: {} })).unread, 0)
  // An API key reads a user's inbox only when it names the user; others' notifications are not reachable.
  assert.equal((await call('GET', '/inbox')).status, 400)
  assert.equal((await ok('GET', '/inbox', { subject: 'mo' })).notifications.length, 2)
  assert.equal((await call('DELETE', `/inbox/notifications/${second.id}`, { auth: await token('*', 'commenter', 'cora') })).status, 404)
  assert.equal((await ok('DELETE', `/inbox/notifications/${second.id}`, { auth: moToken })).deleted, true)
})

test('a required review gates the merge until a reviewer approves; owners may merge and it is recorded', { skip: SKIP, timeout: 60_000 }, async () => {
  const parent = roomName('parent')
  const branch = roomName('branch')
  await ok('POST', `/documents/${parent}/edits`, { json: { ops: [{ op: 'text.insert', path: ['t'], index: 0, text: 'base' }] } })
  await ok('POST', `/documents/${parent}/branches`, { json: { name: branch } }, 201)
  await ok('POST', `/documents/${branch}/edits`, { json: { ops: [{ op: 'text.insert', path: ['t'], index: 4, text: ' + change' }] } })
  const settings = await ok('PATCH', '', { json: { require_review_for_merge: true } })
  assert.equal(settings.require_review_for_merge, true)
  const ed = await token('*', 'editor', 'ed')
  const refused = await call('POST', `/documents/${branch}/merge`, { auth: ed })
  assert.equal(refused.status, 409, JSON.stringify(refused.body))
  assert.match(refused.body.detail, /review/)
  const review = await ok('POST', `/documents/${branch}/reviews`, { auth: ed, json: { reviewers: ['rev'], comment: 'ready?' } }, 201)
  assert.equal(review.state, 'pending')
  assert.equal((await call('POST', `/documents/${branch}/reviews`, { auth: ed, json: { reviewers: ['nobody'] } })).status, 400)
  assert.equal((await call('POST', `/documents/${branch}/reviews/${review.id}/verdicts`, { auth: ed, json: { verdict: 'approved' } })).status, 403, 'only a named reviewer')
  assert.equal((await call('POST', `/documents/${branch}/merge`, { auth: ed })).status, 409, 'still pending')
  const rev = await token('*', 'editor', 'rev')
  const changes = await ok('POST', `/documents/${branch}/reviews/${review.id}/verdicts`, { auth: rev, json: { verdict: 'changes_requested', comment: 'one more' } })
  assert.equal(changes.state, 'changes_requested')
  const approved = await ok('POST', `/documents/${branch}/reviews/${review.id}/verdicts`, { auth: rev, json: { verdict: 'approved' } })
  assert.equal(approved.state, 'approved')
  // An approval is of the branch as it was: a later change needs the reviewer again.
  await ok('POST', `/documents/${branch}/edits`, { json: { ops: [{ op: 'text.insert', path: ['t'], index: 4, text: ' + change' }] } })
  await ok('POST', `/documents/${branch}/edits`, { json: { ops: [{ op: 'text.delete', path: ['t'], index: 4, length: 9 }] } })
  const stale = await call('POST', `/documents/${branch}/merge`, { auth: ed })
  assert.equal(stale.status, 409, JSON.stringify(stale.body))
  assert.match(stale.body.detail, /changed after its approval/)
  await ok('POST', `/documents/${branch}/reviews/${review.id}/verdicts`, { auth: rev, json: { verdict: 'approved' } })
  const merged = await ok('POST', `/documents/${branch}/merge`, { auth: ed })
  assert.equal(merged.changed, true)
  assert.equal(merged.without_approved_review, false)
  assert.equal((await ok('GET', `/documents/${parent}`)).content.t, 'base + change')
  // The requester heard of the verdicts.
  const edInbox = await ok('GET', '/inbox', { auth: ed })
  assert.ok(edInbox.notifications.some((n) => n.kind === 'review' && n.actor === 'rev'))
  // An owner merges another branch without a review, and the merge says so.
  const other = roomName('branch2')
  await ok('POST', `/documents/${parent}/branches`, { json: { name: other } }, 201)
  await ok('POST', `/documents/${other}/edits`, { json: { ops: [{ op: 'text.insert', path: ['u'], index: 0, text: 'owner' }] } })
  const byOwner = await ok('POST', `/documents/${other}/merge`, { auth: await token('*', 'owner', 'own') })
  assert.equal(byOwner.without_approved_review, true)
  await ok('PATCH', '', { json: { require_review_for_merge: false } })

  // The activity feed tells each step with its actor.
  const feed = await ok('GET', `/activity?document=${branch}`)
  const kinds = feed.activity.map((a) => `${a.kind}:${a.actor}`)
  for (const want of ['review.requested:ed', 'review.submitted:rev', 'review.completed:rev']) assert.ok(kinds.includes(want), `${want} in ${kinds}`)
  const parentFeed = await ok('GET', `/documents/${parent}/activity`, { auth: ed })
  assert.ok(parentFeed.activity.some((a) => a.kind === 'branch.merged' && a.actor === 'ed'), JSON.stringify(parentFeed.activity))
  assert.ok(parentFeed.activity.some((a) => a.kind === 'branch.merged' && a.detail.without_approved_review === true))
})

test('live events reach a client that asked within a second; a stock client receives none', { skip: SKIP, timeout: 60_000 }, async () => {
  const room = roomName('live')
  await ok('POST', `/documents/${room}/edits`, { json: { ops: [{ op: 'text.insert', path: ['t'], index: 0, text: 'x' }] } })
  const viewer = await token(room, 'viewer', 'vik')
  const sdk = openRaw(`${server.wsUrl}/${room}?token=${viewer}&events=1`)
  const stock = openRaw(`${server.wsUrl}/${room}?token=${viewer}`)
  await sdk.e2e.opened
  await stock.e2e.opened
  await sleep(300)
  const cora = await token(room, 'commenter', 'cora')
  const started = Date.now()
  const t = await ok('POST', `/documents/${room}/threads`, { auth: cora, json: { anchor: { type: 'document' }, body: text('live?') } }, 201)
  const events = () => sdk.e2e.messages.filter((m) => typeof m !== 'string' && m[0] === 100).map(eventOf)
  await waitFor(() => events().length > 0, { timeout: 5_000, description: 'an event on the opted-in socket' })
  const took = Date.now() - started
  const [event] = events()
  assert.equal(event.type, 'thread.created')
  assert.equal(event.thread, t.id)
  assert.ok(took < 5_000, `arrived in ${took} ms`)
  // The delta fetch after the event returns what changed.
  const delta = await ok('GET', `/documents/${room}/threads?since=${event.seq - 1}`, { auth: viewer })
  assert.deepEqual(delta.threads.map((x) => x.id), [t.id])
  await sleep(500)
  assert.equal(stock.e2e.messages.filter((m) => typeof m !== 'string' && m[0] === 100).length, 0, 'a stock client never receives the event type')
  // Notifications made in the room are told there too (ids only; each user reads their inbox).
  await ok('POST', `/documents/${room}/threads/${t.id}/comments`, { auth: cora, json: { body: mentioning('see ', 'mo') } }, 201)
  await waitFor(() => events().some((e) => e.type === 'notification.created' && e.notifications.some((n) => n.user === 'mo' && n.kind === 'mention')), { timeout: 5_000, description: 'a notification notice on the opted-in socket' })
  const bad = await tryUpgrade(`${server.wsUrl}/${room}?token=${viewer}&events=maybe`, 10_000, { addToken: false })
  assert.equal(bad.upgraded, false)
  assert.equal(bad.status, 400)
  console.log(`live event after ${took} ms`)
})

test('hostile input to the conversation routes is refused whole, with problem details', { skip: SKIP, timeout: 60_000 }, async () => {
  const room = roomName('hostile')
  const other = roomName('hostile-other')
  for (const r of [room, other]) await ok('POST', `/documents/${r}/edits`, { json: { ops: [{ op: 'text.insert', path: ['t'], index: 0, text: 'abc' }] } })
  const cora = await token(room, 'commenter', 'cora')
  const t = await ok('POST', `/documents/${room}/threads`, { auth: cora, json: { anchor: { type: 'document' }, body: text('hi') } }, 201)
  const c = t.comments[0].id
  const expect = async (status, method, path, opts, why) => {
    const res = await call(method, path, { auth: cora, ...opts })
    assert.equal(res.status, status, `${why}: ${JSON.stringify(res.body)}`)
    if (status >= 400) assert.equal(typeof res.body.detail, 'string', `${why}: a problem document`)
  }
  const many = (n, f) => Array.from({ length: n }, (_, i) => f(i))
  const threads = `/documents/${room}/threads`
  await expect(413, 'POST', threads, { json: { anchor: { type: 'document' }, body: text('x'.repeat(70_000)) } }, 'a body over 64 KiB')
  await expect(400, 'POST', threads, { json: { anchor: { type: 'document' }, body: text('x'.repeat(8_001)) } }, 'over the text budget')
  await expect(400, 'POST', threads, { json: { anchor: { type: 'document' }, body: { content: [{ type: 'paragraph', children: many(21, (i) => ({ type: 'mention', user: `u${i}` })) }] } } }, 'too many mentions')
  await expect(400, 'POST', threads, { json: { anchor: { type: 'document' }, body: text('x'), metadata: Object.fromEntries(many(17, (i) => [`k${i}`, i])) } }, 'too much metadata')
  await expect(400, 'POST', threads, { json: { anchor: { type: 'document' }, body: text('x'), metadata: { 'bad key': 1 } } }, 'a bad metadata key')
  await expect(400, 'POST', threads, { json: { anchor: { type: 'point', x: 1e300, y: 0 }, body: text('x') } }, 'a point out of range')
  await expect(400, 'POST', threads, { json: { anchor: { type: 'text', start: b64([0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0]), end: 'AA==' }, body: text('x') } }, 'a varint past 2^53')
  await expect(400, 'POST', threads, { json: { anchor: { type: 'text', start: 'A'.repeat(5_000), end: 'AA==' }, body: text('x') } }, 'a huge position')
  await expect(400, 'POST', threads, { json: { anchor: { type: 'html' }, body: text('x') } }, 'an unknown anchor')
  let nested = { text: 'x' }
  for (let i = 0; i < 200; i++) nested = { children: [nested] }
  await expect(400, 'POST', threads, { json: { anchor: { type: 'document' }, body: { content: [nested] } } }, 'deep nesting')
  await expect(404, 'GET', `${threads}/99999999999999999999`, {}, 'an id past 2^53')
  await expect(404, 'GET', `${threads}/-1`, {}, 'a negative id')
  await expect(400, 'GET', `${threads}?limit=0`, {}, 'limit 0')
  await expect(400, 'GET', `${threads}?limit=1000`, {}, 'limit over the page size')
  await expect(400, 'GET', `${threads}?since=-1`, {}, 'a negative since')
  await expect(400, 'GET', `${threads}?resolved=maybe`, {}, 'a bad flag')
  await expect(400, 'PUT', `${threads}/${t.id}/comments/${c}/reactions/${'x'.repeat(40)}`, {}, 'a long reaction')
  await expect(400, 'PUT', `${threads}/${t.id}/comments/${c}/reactions/a%2Fb`, {}, 'a slash in a reaction')
  await expect(400, 'PATCH', `${threads}/${t.id}`, { json: {} }, 'an update that changes nothing')
  await expect(400, 'PATCH', `${threads}/${t.id}`, { json: { resolved: true, metadata: {} } }, 'two changes at once')
  // A thread is found only through its own document, and a token only reaches its own rooms.
  await expect(404, 'GET', `/documents/${other}/threads/${t.id}`, { auth: await token(other, 'viewer', 'vik') }, 'another document\'s thread')
  await expect(403, 'GET', `/documents/${other}/threads`, {}, 'a token for another room')
  for (let i = 0; i < 20; i++) await ok('PUT', `${threads}/${t.id}/comments/${c}/reactions/e${i}`, { auth: cora })
  await expect(409, 'PUT', `${threads}/${t.id}/comments/${c}/reactions/e20`, {}, 'past the distinct reactions')
  await expect(400, 'POST', '/inbox/read', { auth: await token('*', 'commenter', 'mo'), json: { ids: many(101, (i) => i) } }, 'too many ids at once')
  await expect(400, 'GET', '/activity?kind=DROP%20TABLE', {}, 'a kind that is no event name')
  // Nothing above changed the thread.
  const after = await ok('GET', `${threads}/${t.id}`, { auth: cora })
  assert.equal(after.comments.length, 1)
  assert.deepEqual(after.metadata, {})
  assert.equal((await ok('GET', threads, { auth: cora })).threads.length, 1)
})
