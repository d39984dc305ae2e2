// Presence on top of Yjs awareness: who is here (name, colour), where their cursor is, what they
// have selected. The state layout is plain awareness fields — `user`, `cursor`, `selection`, and
// whatever an app adds with `setField` — so other awareness-based tools can read it.

import type { Awareness } from 'y-protocols/awareness'

/** Shown next to a collaborator's cursor and in presence lists. */
export interface PresenceUser {
  name: string
  /** CSS colour, e.g. `#e4572e`. */
  color: string
  /** Role in the room, when known (editor, viewer, ...). */
  role?: string
}

/** A cursor in the app's own coordinates (for a canvas: world coordinates). */
export interface CursorPosition {
  x: number
  y: number
}

/** The awareness fields this module reads and writes. */
export interface PresenceState<C = CursorPosition, S = string[]> {
  user?: PresenceUser
  cursor?: C | null
  selection?: S | null
}

/** One collaborator (never the local one) as seen through awareness. */
export interface Peer<C = CursorPosition, S = string[]> {
  clientId: number
  user: PresenceUser
  cursor: C | null
  selection: S | null
}

/** Options of `createPresence`. */
export interface PresenceOptions {
  /** Minimum ms between two cursor broadcasts and between two subscriber calls (default 30). */
  throttleMs?: number
  /** Used for peers that have not set a user yet. */
  anonymous?: (clientId: number) => PresenceUser
}

/** Presence helpers bound to one awareness instance. */
export interface Presence<C = CursorPosition, S = string[]> {
  /** Sets the local name and colour (sent at once). */
  setUser(user: PresenceUser): void
  /** Sets the local cursor, or null when it left the surface. Throttled; the last call always goes out. */
  setCursor(cursor: C | null): void
  /** Sets the local selection, or null for none (sent at once). */
  setSelection(selection: S | null): void
  /**
   * Sets any other field of the local awareness state, or null to clear it (sent at once): the
   * `call` field `joinCall` writes, an app's own `typing`, … Other clients read it in the raw
   * awareness states.
   */
  setField(name: string, value: unknown): void
  /** The local state as set so far. */
  local(): PresenceState<C, S>
  /** Everyone else who is present now, ordered by client id. */
  peers(): Peer<C, S>[]
  /** Calls `fn` with `peers()` now and whenever someone joins, leaves or changes (throttled). */
  subscribe(fn: (peers: Peer<C, S>[]) => void): () => void
  /** Calls `fn` with the peers that have a cursor, whenever one moves (throttled). */
  onCursors(fn: (cursors: (Peer<C, S> & { cursor: C })[]) => void): () => void
  /** Sends anything still held back by the throttle and stops listening. */
  destroy(): void
}

/** A colour picked from a client id, for peers that set none. */
export function colorFor (id: number): string {
  const palette = ['#e4572e', '#17bebb', '#ffc914', '#76b041', '#2e86ab', '#a23b72', '#f18f01', '#6a4c93']
  return palette[Math.abs(id) % palette.length]
}

/**
 * Returns a function that calls `fn` at most once per `ms`: the first call runs at once, later
 * ones within the window are folded into one trailing call with the latest arguments.
 */
export function throttle<A extends unknown[]> (fn: (...args: A) => void, ms: number): ((...args: A) => void) & { flush(): void, cancel(): void } {
  let last = -Infinity
  let timer: ReturnType<typeof setTimeout> | null = null
  let pendingArgs: A | null = null
  const run = (): void => {
    timer = null
    last = Date.now()
    const args = pendingArgs
    pendingArgs = null
    if (args !== null) fn(...args)
  }
  const throttled = (...args: A): void => {
    pendingArgs = args
    const wait = last + ms - Date.now()
    if (wait <= 0 && timer === null) run()
    else if (timer === null) timer = setTimeout(run, Math.max(0, wait))
  }
  throttled.flush = (): void => {
    if (timer !== null) {
      clearTimeout(timer)
      run()
    }
  }
  throttled.cancel = (): void => {
    if (timer !== null) clearTimeout(timer)
    timer = null
    pendingArgs = null
  }
  return throttled
}

/** Presence helpers for `awareness` (for example `connection.awareness`). */
export function createPresence<C = CursorPosition, S = string[]> (awareness: Awareness, options: PresenceOptions = {}): Presence<C, S> {
  const ms = options.throttleMs ?? 30
  const anonymous = options.anonymous ?? ((id: number) => ({ name: `Guest ${id % 1000}`, color: colorFor(id) }))
  const cleanups: (() => void)[] = []

  const sendCursor = throttle((cursor: C | null) => {
    awareness.setLocalStateField('cursor', cursor)
  }, ms)

  const peers = (): Peer<C, S>[] => {
    const out: Peer<C, S>[] = []
    for (const [clientId, raw] of awareness.getStates()) {
      if (clientId === awareness.clientID) continue
      const state = raw as PresenceState<C, S>
      out.push({
        clientId,
        user: state.user ?? anonymous(clientId),
        cursor: state.cursor ?? null,
        selection: state.selection ?? null
      })
    }
    return out.sort((a, b) => a.clientId - b.clientId)
  }

  const listen = (fn: () => void): () => void => {
    const notify = throttle(fn, ms)
    const onChange = (_changes: unknown, _origin: unknown): void => { notify() }
    awareness.on('change', onChange)
    const off = (): void => {
      notify.cancel()
      awareness.off('change', onChange)
    }
    cleanups.push(off)
    return off
  }

  return {
    setUser (user) {
      awareness.setLocalStateField('user', user)
    },
    setCursor (cursor) {
      sendCursor(cursor)
    },
    setSelection (selection) {
      awareness.setLocalStateField('selection', selection)
    },
    setField (name, value) {
      awareness.setLocalStateField(name, value)
    },
    local () {
      return (awareness.getLocalState() ?? {}) as PresenceState<C, S>
    },
    peers,
    subscribe (fn) {
      fn(peers())
      return listen(() => { fn(peers()) })
    },
    onCursors (fn) {
      const withCursor = (): (Peer<C, S> & { cursor: C })[] =>
        peers().filter((p): p is Peer<C, S> & { cursor: C } => p.cursor !== null)
      return listen(() => { fn(withCursor()) })
    },
    destroy () {
      sendCursor.flush()
      for (const off of cleanups.splice(0)) off()
    }
  }
}
