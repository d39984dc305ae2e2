// A comment bot for TandemX: it receives the project's webhooks, verifies each with the
// `standardwebhooks` package, answers the threads and comments that mention it, and counts
// the `document.updated` events of every document so it can say how often a document changed.
// The same shape serves an AI suggestion service: swap `compose` for a call to a model.
//
// In-process: `const bot = await startBot({ apiUrl, apiKey, webhookSecret, botUser, port })`.
// Standalone: `node examples/comment-bot/bot.mjs` with TANDEMX_URL, TANDEMX_API_KEY,
// TANDEMX_WEBHOOK_SECRET, BOT_USER and PORT (HOST too, 127.0.0.1 unless set) in the environment.

import http from 'node:http'
import { pathToFileURL } from 'node:url'
import { Webhook } from 'standardwebhooks'

/** Largest webhook body read (TandemX's are a few KiB). */
const MAX_BODY_BYTES = 1024 * 1024
/** How long one call to the TandemX API may take (TandemX waits 10 s for the webhook answer). */
const API_TIMEOUT_MS = 8_000
/** How many handled webhook ids are remembered to drop redeliveries. */
const REMEMBERED_IDS = 10_000

/**
 * Starts the bot's HTTP server.
 *
 * @param {object} options
 * @param {string} options.apiUrl the TandemX base URL, e.g. `https://tandemx.example.com`
 * @param {string} options.apiKey an API key of the project (`tx_key_…`); a commenter key suffices
 * @param {string} options.webhookSecret the subscription's `whsec_…` secret
 * @param {string} options.botUser the member the bot comments as (`TandemX-Subject`)
 * @param {number} [options.port] where to listen (0 or absent: any free port)
 * @param {string} [options.host] the address to listen on (default 127.0.0.1)
 * @param {Pick<Console, 'log' | 'error'>} [options.logger] where to log (default: console)
 * @returns {Promise<{
 *   url: string,
 *   close: () => Promise<void>,
 *   replies: Array<{ project: string, document: string, thread: number, comment: number, to: number | null, actor: string, text: string }>,
 *   events: Array<{ id: string, type: string, outcome: string, at: number, document?: string, thread?: number, comment?: number, actor?: string }>,
 *   edits: Map<string, { updates: number, authors: Set<string> }>,
 *   editsOf: (project: string, document: string) => number
 * }>}
 *   `replies`: the comments the bot posted, in order; `events`: every verified webhook and
 *   what the bot did with it; `edits`: per `project/document`, the `document.updated` events
 *   seen and who made the changes.
 */
export async function startBot ({ apiUrl, apiKey, webhookSecret, botUser, port = 0, host = '127.0.0.1', logger = console }) {
  for (const [name, value] of Object.entries({ apiUrl, apiKey, webhookSecret, botUser })) {
    if (!value) throw new Error(`startBot: ${name} is required`)
  }
  const api = apiUrl.replace(/\/+$/, '')
  const webhook = new Webhook(webhookSecret)
  const replies = []
  const events = []
  const edits = new Map()
  const handled = new Set()
  const inFlight = new Set()

  /** Notes what was done with the message `id`. */
  const record = (id, message, outcome) => events.push({ id, type: message.type, outcome, at: Date.now(), ...summary(message.data) })
  const key = (project, document) => `${project}/${document}`
  const editsOf = (project, document) => edits.get(key(project, document))?.updates ?? 0

  /** Calls the TandemX API; returns the parsed JSON answer or throws with the problem detail. */
  async function call (method, path, { json, asBot = false } = {}) {
    const headers = { authorization: `Bearer ${apiKey}` }
    // The key acts for the bot's member, within that member's role.
    if (asBot) headers['tandemx-subject'] = botUser
    if (json !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(`${api}${path}`, {
      method,
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
      signal: AbortSignal.timeout(API_TIMEOUT_MS)
    })
    const text = await res.text()
    let body
    try { body = text ? JSON.parse(text) : null } catch { body = text }
    if (!res.ok) {
      const err = new Error(`${method} ${path}: ${res.status} ${body && body.detail ? body.detail : text}`)
      err.status = res.status
      throw err
    }
    return body
  }

  const documentPath = (project, document) =>
    `/v1/projects/${encodeURIComponent(project)}/documents/${encodeURIComponent(document)}`

  /** What the bot says: how many updates it saw, and what the document holds now. */
  async function compose (project, document) {
    const updates = editsOf(project, document)
    let sentence = `I've seen ${updates} ${updates === 1 ? 'update' : 'updates'} of this document`
    try {
      const { content } = await call('GET', documentPath(project, document))
      const words = countWords(content)
      sentence += `; it holds ${words} ${words === 1 ? 'word' : 'words'} now`
    } catch (err) {
      // The reply still goes without the document's size.
      logger.error(`comment-bot: reading ${document}: ${err.message}`)
    }
    return `${sentence}. Over to you, `
  }

  /** Posts the reply in `thread`, mentioning `actor` (plain text when `actor` is no member). */
  async function reply (data) {
    const { project, document, thread, actor } = data
    const text = await compose(project, document)
    const path = `${documentPath(project, document)}/threads/${encodeURIComponent(thread)}/comments`
    const paragraph = (children) => ({ body: { content: [{ type: 'paragraph', children }] } })
    let made
    try {
      made = await call('POST', path, { asBot: true, json: paragraph([{ text }, { type: 'mention', user: actor }]) })
    } catch (err) {
      // A mention must name a member; an API key acting as itself is none.
      if (err.status !== 400) throw err
      made = await call('POST', path, { asBot: true, json: paragraph([{ text: `${text}${actor}.` }]) })
    }
    replies.push({ project, document, thread, comment: made.id, to: data.comment ?? null, actor, text })
    return made
  }

  /** Acts on one verified message; returns what it did. */
  async function handle (message) {
    const { type, data } = message
    if (!data || typeof data !== 'object') return 'ignored: no data'
    if (type === 'document.updated') {
      const k = key(data.project, data.document)
      const tally = edits.get(k) ?? { updates: 0, authors: new Set() }
      tally.updates += 1
      for (const a of Array.isArray(data.authors) ? data.authors : []) tally.authors.add(a)
      edits.set(k, tally)
      return 'counted'
    }
    if (type !== 'comment.created' && type !== 'thread.created') return 'ignored: event type'
    // Never answer itself: its own replies come back as comment.created.
    if (data.actor === botUser) return 'ignored: own comment'
    if (!Array.isArray(data.mentioned) || !data.mentioned.includes(botUser)) return 'ignored: not mentioned'
    if (data.thread == null) return 'ignored: no thread'
    await reply(data)
    return 'replied'
  }

  const server = http.createServer((req, res) => {
    const done = serve(req, res).catch((err) => {
      logger.error(`comment-bot: ${err.stack || err}`)
      if (!res.headersSent) res.writeHead(500)
      res.end()
    })
    inFlight.add(done)
    done.finally(() => inFlight.delete(done))
  })

  async function serve (req, res) {
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' })
      return res.end()
    }
    const body = await readBody(req)
    if (body === null) {
      res.writeHead(413)
      return res.end()
    }
    const headers = {
      'webhook-id': String(req.headers['webhook-id'] ?? ''),
      'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
      'webhook-signature': String(req.headers['webhook-signature'] ?? '')
    }
    let message
    try {
      // Checks the signature and that the timestamp is recent; throws otherwise.
      message = webhook.verify(body, headers)
    } catch {
      res.writeHead(401)
      return res.end()
    }
    const id = headers['webhook-id']
    // Delivery is at least once: a message already handled is acknowledged again, not redone.
    if (handled.has(id)) {
      record(id, message, 'ignored: already handled')
      res.writeHead(204)
      return res.end()
    }
    let outcome
    try {
      outcome = await handle(message)
    } catch (err) {
      logger.error(`comment-bot: ${message.type} ${id}: ${err.message}`)
      record(id, message, `failed: ${err.message}`)
      // A refusal (the bot is no commenter, the thread is gone) stays one: acknowledged. Anything
      // else (TandemX unreachable, 5xx, 429) is not, and TandemX retries the same message later.
      const final = err.status >= 400 && err.status < 500 && err.status !== 429
      if (final) remember(handled, id)
      res.writeHead(final ? 204 : 500)
      return res.end()
    }
    remember(handled, id)
    record(id, message, outcome)
    res.writeHead(204)
    res.end()
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = /** @type {import('node:net').AddressInfo} */ (server.address())
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address

  return {
    url: `http://${shownHost}:${address.port}`,
    replies,
    events,
    edits,
    editsOf,
    /** Stops listening and waits for the requests being handled. */
    async close () {
      const closed = new Promise((resolve) => server.close(() => resolve()))
      server.closeIdleConnections()
      await Promise.allSettled([...inFlight])
      await closed
    }
  }
}

/** The request's body as text, or null when it is larger than MAX_BODY_BYTES. */
function readBody (req) {
  return new Promise((resolve, reject) => {
    const chunks = []
    let size = 0
    let tooLarge = false
    req.on('data', (chunk) => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) tooLarge = true
      else chunks.push(chunk)
    })
    req.on('end', () => resolve(tooLarge ? null : Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

/** Adds `id` to `set`, forgetting the oldest ids beyond REMEMBERED_IDS. */
function remember (set, id) {
  set.add(id)
  if (set.size > REMEMBERED_IDS) set.delete(set.values().next().value)
}

/** The parts of an event's data worth logging. */
function summary (data) {
  if (!data || typeof data !== 'object') return {}
  const out = {}
  for (const k of ['document', 'thread', 'comment', 'actor']) if (data[k] != null) out[k] = data[k]
  return out
}

/** Words in every string of a document's JSON content. */
function countWords (value) {
  if (typeof value === 'string') return value.split(/\s+/).filter(Boolean).length
  if (Array.isArray(value)) return value.reduce((n, v) => n + countWords(v), 0)
  if (value && typeof value === 'object') return Object.values(value).reduce((n, v) => n + countWords(v), 0)
  return 0
}

// Run from the command line: configuration from the environment.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const env = process.env
  const missing = ['TANDEMX_URL', 'TANDEMX_API_KEY', 'TANDEMX_WEBHOOK_SECRET', 'BOT_USER'].filter((k) => !env[k])
  if (missing.length) {
    console.error(`comment-bot: set ${missing.join(', ')} (see examples/comment-bot/README.md)`)
    process.exit(2)
  }
  const bot = await startBot({
    apiUrl: env.TANDEMX_URL,
    apiKey: env.TANDEMX_API_KEY,
    webhookSecret: env.TANDEMX_WEBHOOK_SECRET,
    botUser: env.BOT_USER,
    port: Number(env.PORT || 8788),
    host: env.HOST || '127.0.0.1'
  })
  console.log(`comment-bot: ${env.BOT_USER} listening on ${bot.url}`)
  const stop = () => bot.close().then(() => process.exit(0))
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}
