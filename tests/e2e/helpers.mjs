// Client-side helpers: stock y-websocket providers over the `ws` package, raw
// WebSocket clients for protocol-level tests, and small utilities.

import crypto from 'node:crypto'
import http from 'node:http'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { tokenFor, waitFor } from './server.mjs'

const providers = new Set()
const sockets = new Set()

/** A room name that is unique per run: `${prefix}-<random hex>`. */
export function roomName (prefix = 'room') {
  return `${prefix}-${crypto.randomBytes(6).toString('hex')}`
}

/**
 * Connects a stock y-websocket provider to `${wsUrl}/${room}`.
 *
 * BroadcastChannel is disabled: Node has a global BroadcastChannel and
 * providers of the same room in one process would otherwise exchange updates
 * directly, bypassing the server under test.
 *
 * @param {string} wsUrl
 * @param {string} room
 * @param {{ doc?: Y.Doc, params?: Record<string, string>, awareness?: any, connect?: boolean }} [opts]
 * @returns {WebsocketProvider}
 */
export function connectProvider (wsUrl, room, { doc = new Y.Doc(), params, awareness, connect = true } = {}) {
  if (params === undefined) {
    const token = tokenFor(wsUrl)
    params = token ? { token } : {}
  }
  const opts = { WebSocketPolyfill: WebSocket, params, connect, disableBc: true }
  if (awareness) opts.awareness = awareness
  const provider = new WebsocketProvider(wsUrl, room, doc, opts)
  // Count connection-level events so tests can assert "never reconnected".
  provider.e2e = { closes: 0, opens: 0 }
  provider.on('status', ({ status }) => { if (status === 'connected') provider.e2e.opens++ })
  provider.on('connection-close', () => { provider.e2e.closes++ })
  providers.add(provider)
  return provider
}

/**
 * Resolves once the provider has completed the initial sync with the server.
 * @param {WebsocketProvider} provider
 * @param {number} [timeout]
 */
export function waitSynced (provider, timeout = 15_000) {
  return waitFor(() => provider.synced && provider.wsconnected, {
    timeout,
    description: `provider for room ${provider.roomname} to sync`
  })
}

/**
 * Destroys a provider (closing its socket) and forgets it.
 * @param {WebsocketProvider} provider
 */
export function destroyProvider (provider) {
  if (!providers.has(provider)) return
  providers.delete(provider)
  provider.destroy()
  provider.awareness.destroy()
}

/**
 * Opens a raw WebSocket (binaryType arraybuffer) and records what happens to it.
 * `sock.e2e.closed` resolves with { code, reason } when the connection closes;
 * `sock.e2e.messages` collects the binary frames received.
 * @param {string} url
 * @param {import('ws').ClientOptions} [options]
 */
export function openRaw (url, options) {
  const sock = new WebSocket(withToken(url), options)
  sock.binaryType = 'arraybuffer'
  sockets.add(sock)
  const messages = []
  let closedResolve
  const closed = new Promise((resolve) => { closedResolve = resolve })
  sock.on('message', (data, isBinary) => messages.push(isBinary ? new Uint8Array(data) : data.toString()))
  sock.on('close', (code, reason) => {
    sockets.delete(sock)
    closedResolve({ code, reason: reason.toString() })
  })
  sock.on('error', () => {}) // surfaced through 'close' / 'unexpected-response'
  const opened = new Promise((resolve, reject) => {
    sock.once('open', resolve)
    sock.once('close', (code) => reject(new Error(`socket closed before opening (code ${code})`)))
    sock.once('unexpected-response', (_req, res) => {
      reject(Object.assign(new Error(`unexpected HTTP ${res.statusCode} on upgrade`), { statusCode: res.statusCode }))
      res.resume()
      sock.terminate()
    })
  })
  opened.catch(() => {})
  sock.e2e = { messages, closed, opened }
  return sock
}

/**
 * Attempts a WebSocket upgrade with a plain HTTP request and reports the
 * outcome: `{ upgraded: true }` on 101 (socket closed right away), otherwise
 * `{ upgraded: false, status, headers, body }`.
 * @param {string} url http:// or ws:// URL
 * @param {number} [timeout]
 */
export function tryUpgrade (url, timeout = 10_000, { addToken = true } = {}) {
  const target = new URL((addToken ? withToken(url) : url).replace(/^ws/, 'http'))
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: target.hostname,
      port: target.port,
      path: target.pathname + target.search,
      method: 'GET',
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64')
      },
      timeout
    })
    req.on('upgrade', (res, socket) => {
      socket.destroy()
      resolve({ upgraded: true, status: res.statusCode })
    })
    req.on('response', (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => { body += d })
      res.on('end', () => resolve({ upgraded: false, status: res.statusCode, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`upgrade attempt to ${url} timed out`)))
    req.on('error', reject)
    req.end()
  })
}

/**
 * Adds the server's default token to a room URL that carries none, so tests not about
 * credentials read as before.
 * @param {string} url
 */
export function withToken (url) {
  const token = tokenFor(url)
  if (!token || /[?&]token=/.test(url)) return url
  return `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`
}

/** Destroys every provider and raw socket created through these helpers. */
export function destroyAll () {
  for (const p of [...providers]) {
    try { destroyProvider(p) } catch {}
  }
  for (const s of [...sockets]) {
    try { s.terminate() } catch {}
  }
  sockets.clear()
}

/** Plain-JSON view of the shared types used by the tests. */
export function snapshot (doc) {
  return {
    text: doc.getText('text').toString(),
    map: doc.getMap('map').toJSON()
  }
}

/** JSON with object keys sorted, so equal content compares equal as strings. */
export function canonical (value) {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]]))
      : v)
}

/** True when both docs hold the same text and map content. */
export function sameContent (docA, docB) {
  return canonical(snapshot(docA)) === canonical(snapshot(docB))
}

/** Deterministic pseudo-random bytes (mulberry32). */
export function seededBytes (seed, n) {
  let a = seed >>> 0
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff
  }
  return out
}

/**
 * A webhook receiver on 127.0.0.1 that records every request (`{path, headers, body, at}`) and
 * answers 204.
 */
export function startReceiver () {
  const requests = []
  const srv = http.createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (d) => { body += d })
    req.on('end', () => {
      requests.push({ path: req.url, headers: req.headers, body, at: Date.now() })
      res.writeHead(204).end()
    })
  })
  return new Promise((resolve) => {
    srv.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${srv.address().port}`, requests, close: () => srv.close() }))
  })
}

/**
 * A `/signal` socket (docs/signalling.md) of the server at `url`: `frames` collects parsed text
 * frames, `raw` their text, `closed` resolves with the close code and reason; `json(frame)`
 * sends one. Kept in `sockets` (if given) until it closes.
 */
export async function signalSocket (url, token, sockets) {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/signal?token=${encodeURIComponent(token)}`)
  sockets?.add(ws)
  ws.frames = []
  ws.raw = []
  ws.on('message', (data, isBinary) => {
    ws.raw.push(data.toString())
    if (!isBinary) ws.frames.push(JSON.parse(data.toString()))
  })
  ws.closed = new Promise((resolve) => ws.on('close', (code, reason) => {
    sockets?.delete(ws)
    resolve({ code, reason: reason.toString() })
  }))
  ws.on('error', () => {})
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
  })
  ws.json = (frame) => ws.send(JSON.stringify(frame))
  return ws
}

/** Waits for a frame of a signalling socket matching `pred` that arrived after `from` frames. */
export const next = (ws, pred, from = 0, timeout = 10_000) =>
  waitFor(() => ws.frames.slice(from).find(pred), { timeout, description: `a frame on ${ws.url}` })

/** Sends a ping and waits for its pong (frames are handled in order). */
export async function roundTrip (ws) {
  const from = ws.frames.length
  ws.send('{"type":"ping"}')
  await next(ws, (f) => f.type === 'pong', from)
}

export { Y, WebSocket }
