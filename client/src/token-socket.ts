// A WebSocket stand-in that runs an async step (fetching a fresh room token) before it opens the
// real socket.
//
// Why: the stock y-websocket provider reconnects on its own timer and opens the socket
// synchronously with `new provider._WS(provider.url)` (y-websocket 3.1.0, `setupWS`); it re-reads
// `provider.params` for each attempt but offers no hook to await anything first. Handing it this
// class as `WebSocketPolyfill` puts `await getToken()` in front of every connection attempt,
// initial and reconnect alike, without racing the provider's timers or patching it.

/** What the provider needs of a WebSocket constructor (the browser's, or `ws` in Node). */
export interface WebSocketConstructor {
  new (url: string | URL, protocols?: string | string[]): WebSocket
  readonly CONNECTING: number
  readonly OPEN: number
  readonly CLOSING: number
  readonly CLOSED: number
}

/** The close event reported when the async step failed, so the provider backs off and retries. */
export interface SyntheticClose {
  code: number
  reason: string
  wasClean: false
}

/**
 * Thrown (or returned as the rejection) by `prepare` to decide the synthetic close code: a
 * permanent failure uses a code in 4400-4499, which stops the provider's reconnect loop.
 */
export class PrepareError extends Error {
  /** The close code reported to the provider. */
  readonly code: number

  constructor (message: string, code: number, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'PrepareError'
    this.code = code
  }
}

/** Close code for a failed token fetch that may succeed later (private-use range, not 44xx). */
export const CLOSE_TOKEN_UNAVAILABLE = 4000

const CONNECTING = 0
const OPEN = 1
const CLOSING = 2
const CLOSED = 3

/**
 * Returns a WebSocket class whose instances first await `prepare(url)` and then open
 * `new Base(preparedUrl, protocols)`, forwarding its events. If `prepare` rejects, the instance
 * reports an error and then a close with the PrepareError's code (or CLOSE_TOKEN_UNAVAILABLE).
 */
export function tokenSocketClass (
  Base: WebSocketConstructor,
  prepare: (url: string) => Promise<string>
): WebSocketConstructor {
  class TokenSocket {
    static readonly CONNECTING = CONNECTING
    static readonly OPEN = OPEN
    static readonly CLOSING = CLOSING
    static readonly CLOSED = CLOSED
    readonly CONNECTING = CONNECTING
    readonly OPEN = OPEN
    readonly CLOSING = CLOSING
    readonly CLOSED = CLOSED

    onopen: ((ev: Event) => unknown) | null = null
    onmessage: ((ev: MessageEvent) => unknown) | null = null
    onerror: ((ev: Event) => unknown) | null = null
    onclose: ((ev: CloseEvent | SyntheticClose) => unknown) | null = null

    /** The URL the real socket was opened with (with the token), once it is open. */
    url: string
    private inner: WebSocket | null = null
    private state = CONNECTING
    private type: BinaryType = 'arraybuffer'

    constructor (url: string | URL, protocols?: string | string[]) {
      this.url = String(url)
      prepare(this.url).then((prepared) => {
        if (this.state !== CONNECTING) return // closed while the token was being fetched
        this.url = prepared
        const ws = new Base(prepared, protocols)
        ws.binaryType = this.type
        this.inner = ws
        ws.onopen = (ev) => { this.onopen?.(ev) }
        ws.onmessage = (ev) => { this.onmessage?.(ev) }
        ws.onerror = (ev) => { this.onerror?.(ev) }
        ws.onclose = (ev) => {
          this.state = CLOSED
          this.onclose?.(ev)
        }
      }, (err: unknown) => {
        if (this.state !== CONNECTING) return
        this.state = CLOSED
        const code = err instanceof PrepareError ? err.code : CLOSE_TOKEN_UNAVAILABLE
        const reason = err instanceof Error ? err.message : String(err)
        this.onerror?.(new Event('error'))
        // Close reasons are at most 123 bytes on the wire; keep synthetic ones alike.
        this.onclose?.({ code, reason: reason.slice(0, 123), wasClean: false })
      })
    }

    get readyState (): number {
      return this.inner !== null ? this.inner.readyState : this.state
    }

    get binaryType (): BinaryType {
      return this.inner !== null ? this.inner.binaryType : this.type
    }

    set binaryType (type: BinaryType) {
      this.type = type
      if (this.inner !== null) this.inner.binaryType = type
    }

    get bufferedAmount (): number {
      return this.inner !== null ? this.inner.bufferedAmount : 0
    }

    get protocol (): string {
      return this.inner !== null ? this.inner.protocol : ''
    }

    send (data: string | ArrayBufferLike | ArrayBufferView | Blob): void {
      if (this.inner === null) throw new Error('WebSocket is not open')
      this.inner.send(data as ArrayBufferView)
    }

    close (code?: number, reason?: string): void {
      if (this.inner !== null) {
        this.inner.close(code, reason)
      } else {
        this.state = CLOSED
      }
    }
  }
  return TokenSocket as unknown as WebSocketConstructor
}
