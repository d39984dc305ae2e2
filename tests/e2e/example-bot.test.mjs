// The comment bot of examples/comment-bot, run in-process against wrangler dev: it is a member
// with the commenter role and a commenter API key, subscribed to the project's webhooks. A
// thread that mentions it gets its reply (authored by the bot, mentioning the author, counting
// the document's updates); a comment that does not mention it gets none; its own comments
// trigger nothing; a webhook with a wrong signature is refused 401 and acted on by no one; a
// redelivered message is answered once.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Webhook } from 'standardwebhooks'
import { IS_REFERENCE, createProject, freePort, retryOnPortClash, startServer, waitFor } from './server.mjs'
import { roomName } from './helpers.mjs'
import { startBot } from '../../examples/comment-bot/bot.mjs'

const SKIP = IS_REFERENCE && 'the reference server has no conversations or webhooks'
const BOT = 'comment-bot'

let server
let project
let key
let bot
let secret
let room
let ed

async function call (method, path, { auth = key, json } = {}) {
  const headers = { authorization: `Bearer ${auth}` }
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

const thread = (id) => ok('GET', `/documents/${room}/threads/${id}`)
/** The comments of thread `id` the bot wrote. */
const botComments = async (id) => (await thread(id)).comments.filter((c) => c.author === BOT)
/** What the bot did with the message about `comment` of type `type`, once it has. */
const outcomeFor = (type, comment) => bot.events.find((e) => e.type === type && e.comment === comment)?.outcome
const botState = () => JSON.stringify({ replies: bot.replies, events: bot.events.slice(-10) })

/** Posts `message` to the bot as TandemX would, signed with `signingSecret`; its answer's status. */
async function deliver (message, { signingSecret = secret, id = `msg_test_${Math.random().toString(36).slice(2)}`, headers = {} } = {}) {
  const body = JSON.stringify(message)
  const now = new Date()
  const signed = {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
    'webhook-signature': new Webhook(signingSecret).sign(id, now, body)
  }
  const res = await fetch(bot.url, { method: 'POST', headers: { 'content-type': 'application/json', ...signed, ...headers }, body })
  await res.arrayBuffer()
  return res.status
}

before(async () => {
  if (SKIP) return
  server = await startServer({ vars: { WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_RETRY_BASE_MS: '300', WEBHOOK_COALESCE_SECONDS: '1' } })
  ;({ project, key } = await createProject(server, 'Comment bot'))
  for (const [sub, role] of [['cora', 'commenter'], ['ed', 'editor'], [BOT, 'commenter']]) {
    await ok('PUT', `/members/${sub}`, { json: { role } }, 201)
  }
  // The bot holds a key of its own, no more than a commenter's.
  const botKey = await ok('POST', '/keys', { json: { name: 'comment bot', role: 'commenter' } }, 201)
  // The subscription needs the bot's URL and the bot needs the subscription's secret.
  bot = await retryOnPortClash(async () => {
    const port = await freePort()
    const hook = await ok('POST', '/webhooks', {
      json: { url: `http://127.0.0.1:${port}/`, events: ['comment.created', 'thread.created', 'document.updated'], description: 'comment bot' }
    }, 201)
    secret = hook.secret
    try {
      return await startBot({ apiUrl: server.url, apiKey: botKey.secret, webhookSecret: hook.secret, botUser: BOT, port })
    } catch (err) {
      await ok('DELETE', `/webhooks/${hook.id}`)
      if (err.code === 'EADDRINUSE') err.message += ' (Address already in use)'
      throw err
    }
  })
  room = roomName('bot')
  ed = await token(room, 'editor', 'ed')
  // The document, written by an editor: the bot counts one update.
  await ok('POST', `/documents/${room}/edits`, { auth: ed, json: { ops: [{ op: 'text.insert', path: ['notes'], index: 0, text: 'three short words' }] } })
  await waitFor(() => bot.editsOf(project, room) === 1, { timeout: 30_000, description: () => `the bot counted the first update (${botState()})` })
}, { timeout: 180_000 })

after(async () => {
  await bot?.close()
  await server?.stop()
})

test('a thread that mentions the bot gets its reply, by the bot, mentioning the author', { skip: SKIP, timeout: 60_000 }, async () => {
  const cora = await token(room, 'commenter', 'cora')
  const made = await ok('POST', `/documents/${room}/threads`, { auth: cora, json: { anchor: { type: 'document' }, body: mentioning('what do you make of this, ', BOT) } }, 201)
  const [answer] = await waitFor(async () => {
    const mine = await botComments(made.id)
    return mine.length > 0 && mine
  }, { timeout: 30_000, interval: 200, description: () => `the bot's reply in the thread (${botState()})` })
  const view = await thread(made.id)
  assert.equal(view.comments.length, 2)
  assert.equal(view.comments[1].id, answer.id)
  const [paragraph] = answer.body.content
  assert.deepEqual(paragraph.children.at(-1), { type: 'mention', user: 'cora' })
  assert.match(paragraph.children[0].text, /seen 1 update of this document; it holds 3 words now/)
  assert.equal(bot.replies.length, 1)
  assert.deepEqual(
    { thread: bot.replies[0].thread, comment: bot.replies[0].comment, to: bot.replies[0].to, actor: bot.replies[0].actor },
    { thread: made.id, comment: answer.id, to: made.comments[0].id, actor: 'cora' }
  )
  // The reply came back to the bot as comment.created; it did nothing with it.
  assert.equal(await waitFor(() => outcomeFor('comment.created', answer.id), { timeout: 30_000, interval: 100, description: () => `the bot's own comment reached it (${botState()})` }), 'ignored: own comment')
  assert.equal(bot.replies.length, 1)
  assert.equal((await thread(made.id)).comments.length, 2)

  // Another update of the document, then another mention: the count follows.
  await ok('POST', `/documents/${room}/edits`, { auth: ed, json: { ops: [{ op: 'text.insert', path: ['notes'], index: 0, text: 'now ' }] } })
  await waitFor(() => bot.editsOf(project, room) === 2, { timeout: 30_000, description: () => `the bot counted the second update (${botState()})` })
  const again = await ok('POST', `/documents/${room}/threads/${made.id}/comments`, { auth: cora, json: { body: mentioning('and now, ', BOT) } }, 201)
  await waitFor(async () => (await botComments(made.id)).length === 2, { timeout: 30_000, interval: 200, description: () => `the bot's second reply (${botState()})` })
  const second = (await botComments(made.id))[1]
  assert.match(second.body.content[0].children[0].text, /seen 2 updates of this document; it holds 4 words now/)
  assert.equal(bot.replies.at(-1).to, again.id)
  assert.deepEqual(bot.edits.get(`${project}/${room}`).authors, new Set(['user:ed']))
})

test('a comment or thread that does not mention the bot gets no reply', { skip: SKIP, timeout: 60_000 }, async () => {
  const cora = await token(room, 'commenter', 'cora')
  const before = bot.replies.length
  const quiet = await ok('POST', `/documents/${room}/threads`, { auth: cora, json: { anchor: { type: 'document' }, body: text('a note to self') } }, 201)
  const reply = await ok('POST', `/documents/${room}/threads/${quiet.id}/comments`, { auth: cora, json: { body: mentioning('what do you think, ', 'ed') } }, 201)
  // The bot heard both and left them alone.
  assert.equal(await waitFor(() => outcomeFor('thread.created', quiet.comments[0].id), { timeout: 30_000, interval: 100, description: () => `thread.created reached the bot (${botState()})` }), 'ignored: not mentioned')
  assert.equal(await waitFor(() => outcomeFor('comment.created', reply.id), { timeout: 30_000, interval: 100, description: () => `comment.created reached the bot (${botState()})` }), 'ignored: not mentioned')
  assert.equal(bot.replies.length, before)
  assert.deepEqual(await botComments(quiet.id), [])
})

test('the bot does not answer a message whose actor is itself, even one that mentions it', { skip: SKIP, timeout: 30_000 }, async () => {
  const cora = await token(room, 'commenter', 'cora')
  const t = await ok('POST', `/documents/${room}/threads`, { auth: cora, json: { anchor: { type: 'document' }, body: text('here') } }, 201)
  const before = bot.replies.length
  // TandemX leaves the author out of `mentioned`; a correctly signed message that says
  // otherwise still gets no answer.
  await waitFor(() => outcomeFor('thread.created', t.comments[0].id), { timeout: 30_000, interval: 100, description: () => `thread.created reached the bot (${botState()})` })
  const status = await deliver({
    type: 'comment.created',
    timestamp: new Date().toISOString(),
    data: { project, document: room, thread: t.id, comment: t.comments[0].id, actor: BOT, text: `@${BOT} hi`, mentioned: [BOT] }
  }, { id: 'msg_from_itself' })
  assert.equal(status, 204)
  assert.equal(bot.events.find((e) => e.id === 'msg_from_itself').outcome, 'ignored: own comment')
  assert.equal(bot.replies.length, before)
  assert.deepEqual(await botComments(t.id), [])
})

test('a forged webhook is refused 401 and answered by no one; a redelivered one is answered once', { skip: SKIP, timeout: 30_000 }, async () => {
  const cora = await token(room, 'commenter', 'cora')
  const t = await ok('POST', `/documents/${room}/threads`, { auth: cora, json: { anchor: { type: 'document' }, body: text('plain') } }, 201)
  await waitFor(() => outcomeFor('thread.created', t.comments[0].id), { timeout: 30_000, interval: 100, description: () => `thread.created reached the bot (${botState()})` })
  const before = bot.replies.length
  const forged = {
    type: 'thread.created',
    timestamp: new Date().toISOString(),
    data: { project, document: room, thread: t.id, comment: t.comments[0].id, actor: 'cora', text: `@${BOT} hello`, mentioned: [BOT] }
  }
  const otherSecret = 'whsec_' + Buffer.from('not the subscription secret').toString('base64')
  assert.equal(await deliver(forged, { id: 'msg_forged_1', signingSecret: otherSecret }), 401, 'signed with another secret')
  assert.equal(await deliver(forged, { id: 'msg_forged_2', headers: { 'webhook-signature': 'v1,' + Buffer.alloc(32).toString('base64') } }), 401, 'a made-up signature')
  const unsigned = await fetch(bot.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(forged) })
  assert.equal(unsigned.status, 401, 'no signature headers')
  // Signed right but sent with an old timestamp: refused too.
  const old = new Date(Date.now() - 3600_000)
  const body = JSON.stringify(forged)
  const replayed = await fetch(bot.url, {
    method: 'POST',
    headers: { 'webhook-id': 'msg_old', 'webhook-timestamp': String(Math.floor(old.getTime() / 1000)), 'webhook-signature': new Webhook(secret).sign('msg_old', old, body) },
    body
  })
  assert.equal(replayed.status, 401, 'a timestamp an hour old')
  assert.ok(!bot.events.some((e) => ['msg_forged_1', 'msg_forged_2', 'msg_old', ''].includes(e.id)), 'nothing refused was acted on')
  assert.equal(bot.replies.length, before)
  assert.deepEqual(await botComments(t.id), [])

  // The same message signed with the subscription's secret is answered, and only once when it
  // comes again with the same id (deliveries are at least once).
  assert.equal(await deliver(forged, { id: 'msg_twice' }), 204)
  assert.equal(await deliver(forged, { id: 'msg_twice' }), 204)
  assert.equal(bot.replies.length, before + 1)
  assert.deepEqual(bot.events.filter((e) => e.id === 'msg_twice').map((e) => e.outcome), ['replied', 'ignored: already handled'])
  const mine = await botComments(t.id)
  assert.equal(mine.length, 1)
  assert.deepEqual(mine[0].body.content[0].children.at(-1), { type: 'mention', user: 'cora' })
})
