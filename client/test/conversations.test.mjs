import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import { ApiError, TandemxApi, textAnchor, resolveTextAnchor, textBody, bodyText, pointAnchor, subscribeThreads, subscribeInbox } from '../lib/index.js'

function fakeFetch (respond) {
  const calls = []
  const fn = async (url, init = {}) => {
    calls.push({ url: String(url), method: init.method, headers: init.headers, body: init.body === undefined ? undefined : JSON.parse(init.body) })
    const [status, body] = respond(String(url), init)
    return new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })
  }
  fn.calls = calls
  return fn
}

test('conversation routes, methods, bodies and the subject header', async () => {
  const fetch = fakeFetch(() => [200, { ok: true }])
  const api = new TandemxApi({ baseUrl: 'http://h:1', apiKey: 'tx_k', subject: 'bot', fetch })
  const c = api.conversations
  await c.threads.create('p', 'd 1', { anchor: { type: 'document' }, body: textBody('hi') })
  await c.threads.list('p', 'd', { since: 4, resolved: false })
  await c.threads.resolve('p', 'd', 3)
  await c.comments.add('p', 'd', 3, textBody('x'))
  await c.comments.edit('p', 'd', 3, 5, textBody('y'))
  await c.reactions.add('p', 'd', 3, 5, '👍')
  await c.reactions.remove('p', 'd', 3, 5, '👍')
  await c.chat.list('p', 'd', { before: 9 })
  await c.reviews.submit('p', 'b', 2, 'approved')
  await c.inbox.markRead('p')
  await c.inbox.markRead('p', [1, 2])
  await c.inbox.delete('p', 7)
  await c.activity.project('p', { document: 'd' })
  assert.deepEqual(fetch.calls.map((x) => `${x.method} ${x.url}`), [
    'POST http://h:1/v1/projects/p/documents/d%201/threads',
    'GET http://h:1/v1/projects/p/documents/d/threads?since=4&resolved=false',
    'PATCH http://h:1/v1/projects/p/documents/d/threads/3',
    'POST http://h:1/v1/projects/p/documents/d/threads/3/comments',
    'PATCH http://h:1/v1/projects/p/documents/d/threads/3/comments/5',
    'PUT http://h:1/v1/projects/p/documents/d/threads/3/comments/5/reactions/%F0%9F%91%8D',
    'DELETE http://h:1/v1/projects/p/documents/d/threads/3/comments/5/reactions/%F0%9F%91%8D',
    'GET http://h:1/v1/projects/p/documents/d/chat?before=9',
    'POST http://h:1/v1/projects/p/documents/b/reviews/2/verdicts',
    'POST http://h:1/v1/projects/p/inbox/read',
    'POST http://h:1/v1/projects/p/inbox/read',
    'DELETE http://h:1/v1/projects/p/inbox/notifications/7',
    'GET http://h:1/v1/projects/p/activity?document=d'
  ])
  assert.equal(fetch.calls[0].headers['tandemx-subject'], 'bot')
  assert.deepEqual(fetch.calls[2].body, { resolved: true })
  assert.deepEqual(fetch.calls[9].body, {})
  assert.deepEqual(fetch.calls[10].body, { ids: [1, 2] })
})

test('a text anchor resolves locally and follows edits before it', () => {
  const doc = new Y.Doc()
  const text = doc.getText('t')
  text.insert(0, 'the quick brown fox')
  const anchor = textAnchor(text, 10, 15)
  assert.deepEqual(resolveTextAnchor(doc, anchor), { index: 10, length: 5 })
  text.insert(0, '>> ')
  assert.deepEqual(resolveTextAnchor(doc, anchor), { index: 13, length: 5 })
  // Typing at the range's end stays outside it.
  text.insert(18, '!')
  assert.deepEqual(resolveTextAnchor(doc, anchor), { index: 13, length: 5 })
  assert.throws(() => textAnchor(text, 3, 3), RangeError)
  assert.deepEqual(pointAnchor(1, 2, { map: 'nodes', key: 'n1' }), { type: 'point', x: 1, y: 2, node: { map: 'nodes', key: 'n1' } })
})

test('text bodies turn @user into mentions of known users only', () => {
  const body = textBody('hi @ada and @adam, not @bob\nbye', ['ada', 'adam'])
  assert.deepEqual(body.content[0].children, [
    { text: 'hi ' }, { type: 'mention', user: 'ada' }, { text: ' and ' }, { type: 'mention', user: 'adam' }, { text: ', not @bob' }
  ])
  assert.equal(bodyText(body), 'hi @ada and @adam, not @bob\nbye')
})

test('subscribeThreads loads, then fetches only what changed after an event', async () => {
  const thread = (id, seq, extra = {}) => ({ id, seq, comments: [], position: { orphaned: false }, ...extra })
  const pages = {
    0: { threads: [thread(1, 2), thread(3, 4)], next_after: null, seq: 4 },
    4: { threads: [thread(3, 6, { deleted: { by: 'a', at: 1 } }), thread(7, 8)], next_after: null, seq: 8 }
  }
  const fetch = fakeFetch((url) => [200, pages[new URL(url).searchParams.get('since')] ?? { threads: [], next_after: null, seq: 8 }])
  const api = new TandemxApi({ baseUrl: 'http://h:1', apiKey: 't', fetch })
  const listeners = []
  const conn = { on: (event, fn) => { listeners.push([event, fn]); return () => {} } }
  const live = subscribeThreads(api.conversations, 'p', 'd', conn)
  await live.ready
  assert.deepEqual([...live.current.keys()], [1, 3])
  for (const [event, fn] of listeners) if (event === 'conversation') fn({ type: 'comment.created', thread: 7, seq: 8 })
  await live.refresh()
  assert.deepEqual([...live.current.keys()].sort(), [1, 7])
  const sinces = fetch.calls.map((c) => new URL(c.url).searchParams.get('since'))
  assert.deepEqual(sinces.slice(0, 2), ['0', '4'], 'the whole list once, then only what changed')
  live.stop()
})

test('a live view reports a failed load to onError, keeps its value, and clears the error once a load succeeds', async () => {
  let failing = false
  let unread = 2
  const fetch = fakeFetch((url) => {
    if (failing) return [403, { type: 'about:blank', title: 'Forbidden', status: 403, detail: 'not a member' }]
    return [200, new URL(url).pathname.endsWith('/count') ? { unread } : { notifications: [], next_before: null }]
  })
  const api = new TandemxApi({ baseUrl: 'http://h:1', apiKey: 't', fetch })
  const inbox = subscribeInbox(api.conversations, 'p', null)
  await inbox.ready
  assert.equal(inbox.current.unread, 2)
  assert.equal(inbox.error, null)
  const errors = []
  const values = []
  inbox.onError((err) => errors.push(err))
  inbox.on((v) => values.push(v.unread))
  failing = true
  await inbox.refresh()
  assert.equal(errors.length, 1)
  assert.ok(errors[0] instanceof ApiError)
  assert.equal(errors[0].status, 403)
  assert.equal(inbox.error, errors[0])
  assert.equal(inbox.current.unread, 2, 'the last good value stays')
  assert.deepEqual(values, [], 'no value listener call for a failed load')
  failing = false
  unread = 0
  await inbox.refresh()
  assert.equal(inbox.error, null)
  assert.deepEqual(values, [0])
  inbox.stop()
  failing = true
  await inbox.refresh()
  assert.equal(errors.length, 1, 'stopped: no more error listener calls')
})
