// connect(): the stock y-websocket provider, plus what a TandemX room needs around it — a fresh
// room token before every connection attempt, reconnect after "token expired" (close 4401), one
// status value for the UI, permission-denied notices, and an acknowledged count of the edits
// made offline.

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { Awareness } from 'y-protocols/awareness'
import * as decoding from 'lib0/decoding'
import { Emitter } from './emitter.js'
import { PrepareError, tokenSocketClass, type WebSocketConstructor } from './token-socket.js'

/** y-protocols message types (y-websocket `messageAwareness`, `messageAuth`). */
const MESSAGE_AWARENESS = 1
const MESSAGE_AUTH = 2
/** y-protocols/auth `messagePermissionDenied`. */
const AUTH_PERMISSION_DENIED = 0
/** TandemX's conversation event message (docs/protocol.md): sent only to sockets that ask. */
const MESSAGE_CONVERSATION = 100

/** WebSocket close code TandemX uses when a connection's token expires. */
export const CLOSE_TOKEN_EXPIRED = 4401

/** Whether a connection carries a room token, or runs without one (dev servers before auth). */
export type AuthMode = 'token' | 'none'

/** Why a token is being asked for. `expired` and `rejected` mean: do not reuse a cached one. */
export type TokenReason =
  | 'initial' // the first connection
  | 'reconnect' // the connection dropped after it had opened
  | 'expired' // the server closed the connection with 4401
  | 'rejected' // the previous attempt never opened (refused upgrade, or no network)
  | 'refresh' // joinCall: fresh TURN credentials for a call (no socket); a fresh-enough token will do

/** Passed to `getToken`. */
export interface TokenRequest {
  room: string
  reason: TokenReason
  /** 1 for the first connection attempt, counting up across reconnects. */
  attempt: number
}

/**
 * What `getToken` returns: a token, a token with its expiry (unix seconds), or `null` to connect
 * without a token.
 */
export type TokenResult = string | null | { token: string | null, expiresAt?: number | null }

/** Supplies room tokens. Throw a `PrepareError` with a 44xx code to stop reconnecting. */
export type GetToken = (request: TokenRequest) => Promise<TokenResult> | TokenResult

/** Options of `connect`. */
export interface ConnectOptions {
  /** The TandemX server: `https://host`, `http://127.0.0.1:8787`, or the rooms URL `ws://host/rooms`. */
  url: string
  /** Room name: 1 to 128 characters from `A-Z a-z 0-9 . _ ~ - :`. */
  room: string
  /** Called before every connection attempt. Omit it to connect without a token. */
  getToken?: GetToken
  /** The document to sync; a new one by default. */
  doc?: Y.Doc
  /** The awareness instance; a new one for `doc` by default. */
  awareness?: Awareness
  /** WebSocket constructor, for Node (`import WebSocket from 'ws'`); the global one by default. */
  WebSocket?: WebSocketConstructor
  /**
   * Also sync with other tabs of this browser over BroadcastChannel. Off by default: such updates
   * bypass the server, and with it the room's permissions.
   */
  broadcastChannel?: boolean
  /** Longest wait between reconnect attempts, in ms (y-websocket's `maxBackoffTime`). */
  maxBackoffMs?: number
  /** Connect at once (default true); otherwise call `connection.connect()`. */
  connect?: boolean
  /**
   * In a browser, drop the socket as soon as the window reports `offline` and retry at once on
   * `online` (default true). Without it a dead socket is noticed only by y-websocket's 30 s
   * watchdog.
   */
  watchNetwork?: boolean
  /**
   * Receive conversation events (threads, comments, reactions, chat) on the socket
   * (`?events=1`, docs/protocol.md) as `conversation` events. Off by default.
   */
  events?: boolean
}

/**
 * A change to the room's conversations, pushed to connections that asked for events. Small on
 * purpose: fetch what changed with `?since=` (see `subscribeThreads`).
 */
export interface ConversationEvent {
  /** `thread.created`, `comment.created`, `reaction.added`, `chat.message.created`, … */
  type: string
  /** The room's conversation sequence after the change. */
  seq: number
  /** Who made it. */
  actor: string
  thread: number | null
  comment: number | null
  message: number | null
  emoji: string | null
  /** `notification.created`: the notifications made (each user reads their own inbox). */
  notifications?: Array<{ user: string, id: number, kind: string }>
  /** `review.changed`: which review, and what happened (`review.requested`, `review.submitted`, …). */
  review?: number
  event?: string
}

/**
 * Connection status, for the UI:
 * `connecting` (fetching a token or opening the socket), `connected` (open, first sync running),
 * `synced`, `disconnected` (lost; retrying with backoff), `closed` (stopped: the server refused
 * for good, or `disconnect()`/`destroy()` was called).
 */
export type ConnectionStatus = 'connecting' | 'connected' | 'synced' | 'disconnected' | 'closed'

/** Payload of the `status` event. */
export interface StatusEvent {
  status: ConnectionStatus
  /** Known once the first token was asked for. */
  authMode: AuthMode | null
  /** Close code and reason when the server ended the connection. */
  code?: number
  reason?: string
}

/** Events of a connection. */
export interface ConnectionEvents extends Record<string, unknown> {
  status: StatusEvent
  /** Local updates made while disconnected reached the server, which acknowledged them. */
  'offline-edits-merged': { count: number }
  /** The server dropped a document update (y-protocols permission-denied auth message). */
  'permission-denied': { reason: string }
  /** A token was obtained for a connection attempt. */
  token: { authMode: AuthMode, expiresAt: number | null, reason: TokenReason }
  /** `getToken` failed; the attempt is reported as closed and retried unless the error was final. */
  'token-error': { error: unknown }
  /** A conversation changed (only with `events: true`). */
  conversation: ConversationEvent
}

/** A live room connection. */
export interface Connection {
  readonly doc: Y.Doc
  readonly provider: WebsocketProvider
  readonly awareness: Awareness
  readonly room: string
  /** The current status. */
  readonly status: ConnectionStatus
  /** Whether the current (or last) connection carries a token; null before the first attempt. */
  readonly authMode: AuthMode | null
  /** Expiry (unix seconds) of the current token, when `getToken` told it. */
  readonly tokenExpiresAt: number | null
  /** Local updates made while disconnected that the server has not acknowledged yet. */
  readonly pendingOfflineEdits: number
  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof ConnectionEvents>(event: K, fn: (payload: ConnectionEvents[K]) => void): () => void
  /** (Re)connects after `disconnect()` or after the server refused; fetches a fresh token. */
  connect(): void
  /** Closes the connection and stops reconnecting. Edits made now are merged on `connect()`. */
  disconnect(): void
  /** Disconnects and releases the provider and the awareness instance. */
  destroy(): void
}

/**
 * The URL y-websocket appends `/{room}` to: `ws(s)://host/rooms`. Accepts an http(s) or ws(s)
 * server URL, with or without the `/rooms` path.
 */
export function roomsUrl (url: string): string {
  const base = wsUrl(url)
  return base.endsWith('/rooms') ? base : `${base}/rooms`
}

/**
 * `url` as a WebSocket URL: http(s) becomes ws(s), ws(s) stays; without its query and trailing
 * slashes. Other schemes are refused.
 */
export function wsUrl (url: string): string {
  const u = new URL(url)
  if (u.protocol === 'http:') u.protocol = 'ws:'
  else if (u.protocol === 'https:') u.protocol = 'wss:'
  else if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new Error(`unsupported server URL ${url}`)
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`
}

/**
 * Whether the provider should reconnect after the server closed with `code`. As y-websocket's
 * default (4400-4499 are final: access revoked, room gone), except 4401 "token expired", which a
 * fresh token fixes.
 */
export function shouldReconnect (code: number): boolean {
  if (code === CLOSE_TOKEN_EXPIRED) return true
  return !(code >= 4400 && code < 4500)
}

/** A `getToken` answer as token and expiry (null when not told). */
export function normalizeToken (result: TokenResult): { token: string | null, expiresAt: number | null } {
  if (result === null || typeof result === 'string') return { token: result, expiresAt: null }
  return { token: result.token, expiresAt: result.expiresAt ?? null }
}

/** The client ids and clocks of an encoded awareness update (y-protocols/awareness layout). */
function awarenessClocks (update: Uint8Array): Map<number, number> {
  const decoder = decoding.createDecoder(update)
  const clocks = new Map<number, number>()
  const len = decoding.readVarUint(decoder)
  for (let i = 0; i < len; i++) {
    const clientId = decoding.readVarUint(decoder)
    const clock = decoding.readVarUint(decoder)
    decoding.readVarString(decoder)
    clocks.set(clientId, clock)
  }
  return clocks
}

/**
 * Connects to a TandemX room with the stock y-websocket provider, fetching a fresh token before
 * every connection attempt.
 */
export function connect (options: ConnectOptions): Connection {
  const { room } = options
  const doc = options.doc ?? new Y.Doc()
  const awareness = options.awareness ?? new Awareness(doc)
  const NativeWebSocket = options.WebSocket ?? (globalThis.WebSocket as unknown as WebSocketConstructor | undefined)
  if (NativeWebSocket === undefined) throw new Error('no WebSocket: pass options.WebSocket (for example the `ws` package)')
  const events = new Emitter<ConnectionEvents>()

  let status: ConnectionStatus = 'closed'
  let authMode: AuthMode | null = null
  let tokenExpiresAt: number | null = null
  let attempt = 0
  let nextReason: TokenReason = 'initial'
  let destroyed = false
  let stopped = false // disconnect() called and not undone by connect()
  let networkDrop = false // closing the socket because the browser went offline
  // Offline edits: counted while no socket is open, confirmed once the server echoes an
  // awareness clock we sent after them (see confirmMerge).
  let pending = 0
  let awaitingAck: { clock: number, count: number } | null = null

  const setStatus = (next: ConnectionStatus, extra: { code?: number, reason?: string } = {}): void => {
    if (next === status && extra.code === undefined) return
    status = next
    events.emit('status', { status, authMode, ...extra })
  }

  const prepare = async (url: string): Promise<string> => {
    attempt++
    const reason = nextReason
    nextReason = 'reconnect'
    setStatus('connecting')
    let result: { token: string | null, expiresAt: number | null }
    try {
      result = normalizeToken(options.getToken !== undefined ? await options.getToken({ room, reason, attempt }) : null)
    } catch (error) {
      events.emit('token-error', { error })
      throw error instanceof PrepareError ? error : new PrepareError(`token unavailable: ${String(error instanceof Error ? error.message : error)}`, 4000, { cause: error })
    }
    if (destroyed) throw new PrepareError('destroyed', 1000)
    const target = new URL(url)
    if (options.events === true) target.searchParams.set('events', '1')
    if (result.token !== null && result.token !== '') {
      target.searchParams.set('token', result.token)
      provider.params.token = result.token // so `provider.url` shows what was used
      authMode = 'token'
    } else {
      target.searchParams.delete('token')
      delete provider.params.token
      authMode = 'none'
    }
    tokenExpiresAt = result.expiresAt
    events.emit('token', { authMode, expiresAt: tokenExpiresAt, reason })
    return target.toString()
  }

  const provider = new WebsocketProvider(roomsUrl(options.url), room, doc, {
    connect: false,
    awareness,
    WebSocketPolyfill: tokenSocketClass(NativeWebSocket, prepare),
    disableBc: options.broadcastChannel !== true,
    maxBackoffTime: options.maxBackoffMs ?? 2500,
    shouldReconnect: (event) => shouldReconnect(event.code)
  })

  // Permission denied: y-websocket only logs it; surface it as an event.
  provider.messageHandlers[MESSAGE_AUTH] = (_encoder, decoder) => {
    if (decoding.readVarUint(decoder) === AUTH_PERMISSION_DENIED) {
      events.emit('permission-denied', { reason: decoding.readVarString(decoder) })
    }
  }

  // Conversation events (only sent when asked for): one JSON string each.
  provider.messageHandlers[MESSAGE_CONVERSATION] = (_encoder, decoder) => {
    try {
      events.emit('conversation', JSON.parse(decoding.readVarString(decoder)) as ConversationEvent)
    } catch {
      // A malformed event is dropped; the next fetch catches up.
    }
  }

  // Peek at awareness messages for the echo of our own clock, then hand them on unchanged.
  const handleAwareness = provider.messageHandlers[MESSAGE_AWARENESS]
  provider.messageHandlers[MESSAGE_AWARENESS] = (encoder, decoder, prov, emitSynced, type) => {
    if (awaitingAck !== null) {
      try {
        const echoed = awarenessClocks(decoding.readVarUint8Array(decoding.clone(decoder))).get(doc.clientID)
        if (echoed !== undefined && echoed >= awaitingAck.clock) {
          const { count } = awaitingAck
          awaitingAck = null
          pending -= count
          events.emit('offline-edits-merged', { count })
        }
      } catch {
        // A message we cannot read is left to the stock handler to judge.
      }
    }
    handleAwareness(encoder, decoder, prov, emitSynced, type)
  }

  const onUpdate = (_update: Uint8Array, origin: unknown): void => {
    // Updates from the server carry the provider as origin. Anything else made while no socket
    // is open waits for the next sync.
    if (origin !== provider && !provider.wsconnected) pending++
  }
  doc.on('update', onUpdate)

  // The server re-broadcasts awareness to the sender too (docs/protocol.md), and it handles a
  // connection's messages in order and stores an update before it sends anything after it. So
  // once it echoes an awareness clock we sent after our sync step 2, the offline edits in that
  // step 2 are stored. (Sync step 2 goes out when the server's step 1 arrives, which the server
  // sends on connect, before it answers ours — so before `synced`.)
  const confirmMerge = (): void => {
    if (pending === 0 || awaitingAck !== null) return
    const count = pending
    const local = awareness.getLocalState()
    if (local === null) {
      // Nothing to echo: `synced` is the best signal there is.
      pending -= count
      events.emit('offline-edits-merged', { count })
      return
    }
    awareness.setLocalState(local) // same state, next clock: broadcast at once
    const meta = awareness.meta.get(doc.clientID)
    awaitingAck = { clock: meta !== undefined ? meta.clock : 0, count }
  }

  provider.on('status', ({ status: s }) => {
    if (s === 'connected') setStatus('connected')
    else if (s === 'connecting') setStatus('connecting')
  })
  provider.on('sync', (synced: boolean) => {
    if (synced && provider.wsconnected) {
      setStatus('synced')
      confirmMerge()
    }
  })
  provider.on('connection-close', (event: CloseEvent | null) => {
    awaitingAck = null // unconfirmed: confirm again after the next sync
    if (event !== null && event.code === CLOSE_TOKEN_EXPIRED) nextReason = 'expired'
    else if (!provider.wsconnected) nextReason = 'rejected'
    else nextReason = 'reconnect'
    if (destroyed) return
    if (event === null) {
      // Closed from this side: disconnect() stops; the provider's no-message watchdog and the
      // offline handler retry.
      setStatus(provider.shouldConnect || networkDrop ? 'disconnected' : 'closed')
    } else {
      setStatus('disconnected', { code: event.code, reason: event.reason })
    }
  })
  provider.on('closed', ({ code, reason }: { code: number, reason: string }) => {
    if (!destroyed) setStatus('closed', { code, reason })
  })

  // The browser knows before the socket does when the network is gone.
  const win = globalThis as unknown as Partial<Pick<Window, 'addEventListener' | 'removeEventListener'>>
  const watch = options.watchNetwork !== false && typeof win.addEventListener === 'function'
  const onOffline = (): void => {
    if (stopped || destroyed || provider.ws === null) return
    networkDrop = true
    provider.disconnect() // closes now, without waiting for a close handshake that cannot finish
    networkDrop = false
    provider.connect() // retries with backoff until the network is back
  }
  const onOnline = (): void => {
    if (stopped || destroyed) return
    if (provider.ws === null) provider.connect() // do not wait for the backoff timer
  }
  if (watch) {
    win.addEventListener?.('offline', onOffline)
    win.addEventListener?.('online', onOnline)
  }

  const connection: Connection = {
    doc,
    provider,
    awareness,
    room,
    get status () { return status },
    get authMode () { return authMode },
    get tokenExpiresAt () { return tokenExpiresAt },
    get pendingOfflineEdits () { return pending },
    on: (event, fn) => events.on(event, fn),
    connect () {
      if (destroyed) throw new Error('connection destroyed')
      stopped = false
      provider.connect()
    },
    disconnect () {
      stopped = true
      provider.disconnect()
      if (!destroyed) setStatus('closed')
    },
    destroy () {
      if (destroyed) return
      provider.disconnect()
      setStatus('closed')
      destroyed = true
      if (watch) {
        win.removeEventListener?.('offline', onOffline)
        win.removeEventListener?.('online', onOnline)
      }
      doc.off('update', onUpdate)
      provider.destroy()
      awareness.destroy()
      events.clear()
    }
  }

  // Connect on the next microtask, so listeners added right after `connect()` see every event.
  if (options.connect !== false) queueMicrotask(() => { if (!destroyed && !stopped) provider.connect() })
  return connection
}
