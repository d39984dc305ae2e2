// One fuzzing connection ("lane"): a raw WebSocket to a room with one role, that sends a frame
// and then a probe, and reports what became of the frame. The probe is an awareness update for
// a client id only this connection uses; the server re-broadcasts awareness to every connection,
// sender included, and handles a connection's frames in order, so the probe's echo means the
// frame before it was taken without closing the connection.

import * as decoding from 'lib0/decoding'
import WebSocket from 'ws'
import { MSG_AUTH, MSG_AWARENESS, MSG_SYNC, awarenessFrame, awarenessPayload, updateFrame, Y } from './corpus.mjs'

/** Ids of probe clients: far from the corpus's and the stock providers' random ones. */
const PROBE_BASE = 0x7f000000

/** Close codes docs/protocol.md gives for refused input: a frame closed with one was refused. */
export const DOCUMENTED_CLOSES = new Set([1003, 1007, 1008, 1009, 4429])

/** `promise`, or a rejection after `ms` (the server may stop answering altogether). */
export function within (promise, ms, what) {
  let timer
  return Promise.race([
    promise,
    new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms) })
  ]).finally(() => clearTimeout(timer))
}

/**
 * Opens a WebSocket and resolves once it is open (rejects on an HTTP refusal or timeout).
 * @returns {Promise<WebSocket>}
 */
export function openSocket (url, timeout = 10_000) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { maxPayload: 256 * 1024 * 1024 })
    ws.binaryType = 'arraybuffer'
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('timeout')) }, timeout)
    ws.once('open', () => { clearTimeout(timer); resolve(ws) })
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer)
      res.resume()
      ws.terminate()
      reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode }))
    })
    ws.once('error', (err) => { clearTimeout(timer); reject(err) })
  })
}

/** The (client, clock) pairs of an awareness message, or null if `data` is not one. */
function awarenessEntries (data) {
  try {
    const dec = decoding.createDecoder(data)
    if (decoding.readVarUint(dec) !== MSG_AWARENESS) return null
    const inner = decoding.createDecoder(decoding.readVarUint8Array(dec))
    const n = decoding.readVarUint(inner)
    const out = []
    for (let i = 0; i < n; i++) {
      out.push([decoding.readVarUint(inner), decoding.readVarUint(inner)])
      decoding.readVarString(inner)
    }
    return out
  } catch {
    return null
  }
}

export class Lane {
  /**
   * @param {{ index: number, url: string, room: string, role: string, token: string, timeout: number }} opts
   */
  constructor ({ index, url, room, role, token, timeout }) {
    Object.assign(this, { index, url, room, role, token, timeout })
    this.ws = null
    this.connections = 0
    this.clock = 0
    this.dead = null // why the lane gave up (its room refused it or never answered)
  }

  get reconnects () { return Math.max(0, this.connections - 1) }

  async connect () {
    const ws = await openSocket(`${this.url}/${this.room}?token=${encodeURIComponent(this.token)}`)
    this.connections++
    this.probeClient = PROBE_BASE + this.index * 10_000 + this.connections
    this.ws = ws
    this.inbox = []
    this.waiter = null
    this.closed = null
    ws.on('message', (data, isBinary) => {
      const msg = isBinary ? new Uint8Array(data) : data.toString()
      this.inbox.push(msg)
      this.waiter?.()
    })
    ws.on('close', (code) => {
      this.closed = { code }
      if (this.ws === ws) this.ws = null
      this.waiter?.()
    })
    ws.on('error', () => {})
    // The probe's client id is claimed first: a connection owns at most a few awareness ids
    // (presence::MAX_IDS_PER_CONNECTION), and an awareness flood sent before the first probe
    // would otherwise take them all and leave the probe ignored.
    const claimed = await this.send(new Uint8Array(0), { probeOnly: true })
    if (claimed.outcome !== 'accepted' && claimed.outcome !== 'denied') {
      throw Object.assign(new Error(`probe id not claimed: ${claimed.outcome}`), { code: claimed.outcome })
    }
  }

  /**
   * Sends `frame`, then the probe; resolves `{ outcome, answers, ms }` where outcome is
   * "accepted", "denied" (the y-protocols permission-denied answer), "close <code>",
   * "timeout" or "connect <why>" (HTTP <status>, timeout, ECONNREFUSED…).
   */
  async send (frame, { probeOnly = false } = {}) {
    if (!this.ws && !probeOnly) {
      try {
        await this.connect()
      } catch (err) {
        return { outcome: `connect ${err.status ? `HTTP ${err.status}` : err.code ?? err.message}`, answers: 0, ms: 0 }
      }
    }
    const ws = this.ws
    const started = Date.now()
    const from = this.inbox.length
    const clock = ++this.clock
    const probe = awarenessFrame(awarenessPayload([[this.probeClient, clock, `{"probe":${clock}}`]]))
    try {
      if (!probeOnly) ws.send(frame)
      ws.send(probe)
    } catch {}
    const result = await new Promise((resolve) => {
      const timer = setTimeout(() => finish('timeout'), this.timeout)
      const check = () => {
        if (this.closed) return finish(`close ${this.closed.code}`)
        for (let i = from; i < this.inbox.length; i++) {
          const m = this.inbox[i]
          if (typeof m === 'string') continue
          const entries = awarenessEntries(m)
          if (entries?.some(([c, k]) => c === this.probeClient && k === clock)) {
            const denied = this.inbox.slice(from, i).some((x) => typeof x !== 'string' && x[0] === MSG_AUTH)
            return finish(denied ? 'denied' : 'accepted', i - from)
          }
        }
      }
      const finish = (outcome, answers = this.inbox.length - from) => {
        clearTimeout(timer)
        this.waiter = null
        resolve({ outcome, answers, ms: Date.now() - started })
      }
      this.waiter = check
      check()
    })
    if (result.outcome === 'timeout') this.drop()
    // Keep the inbox small: only messages after `from` are ever read.
    if (this.inbox.length > 10_000) this.inbox = []
    return result
  }

  /** Closes the socket at once (no closing handshake). */
  drop () {
    const ws = this.ws
    this.ws = null
    try { ws?.terminate() } catch {}
  }
}

/**
 * Whether a room still works: two fresh connections, an update from one reaches the other
 * within `timeout`. Resolves null when it does, or why not.
 */
export async function roomWorks (url, room, token, timeout = 10_000) {
  const q = `${url}/${room}?token=${encodeURIComponent(token)}`
  let a, b
  try {
    [a, b] = await Promise.all([openSocket(q, timeout), openSocket(q, timeout)])
  } catch (err) {
    try { a?.terminate() } catch {}
    return `a new connection is refused (${err.message})`
  }
  try {
    const doc = new Y.Doc()
    doc.getText('fz-alive').insert(0, 'alive')
    const update = updateFrame(Y.encodeStateAsUpdate(doc))
    const got = new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeout)
      b.on('message', (data, isBinary) => {
        const m = isBinary ? new Uint8Array(data) : null
        if (m && m[0] === MSG_SYNC && m[1] === 2) { clearTimeout(timer); resolve(true) }
      })
      b.on('close', () => { clearTimeout(timer); resolve(false) })
    })
    a.send(update)
    return (await got) ? null : `an update from one new connection did not reach another within ${timeout} ms`
  } finally {
    a.terminate()
    b.terminate()
  }
}
