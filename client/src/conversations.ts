// Conversations in the SDK: the types of threads, comments, chat, reviews, activity and the
// inbox; their routes (`api.conversations`); anchors for Yjs text selections and canvas points;
// and live subscriptions that refetch what changed when the room pushes an event
// (docs/conversations.md, docs/protocol.md).

import * as Y from 'yjs'
import type { Connection, ConversationEvent } from './connect.js'

/** An inline part of a body: text with marks, a mention, or a link. Never HTML. */
export type Inline =
  | { type?: 'text', text: string, bold?: boolean, italic?: boolean, code?: boolean }
  | { type: 'mention', user: string }
  | { type: 'link', url: string, text?: string }

/** A structured body of a comment or chat message. */
export interface Body {
  content: Array<{ type: 'paragraph', children: Inline[] }>
}

/** Where a thread is attached. */
export type Anchor =
  | { type: 'document' }
  | { type: 'text', start: string, end: string }
  | { type: 'point', x: number, y: number, node?: { map: string, key: string } }

/** Where a thread's anchor is now (resolved by the server against the document). */
export interface Position {
  orphaned: boolean
  /** Text anchors: start and length in UTF-16 units, the text as it is now, the root type. */
  index?: number
  length?: number
  quote?: string
  text?: string
}

/** Who did something, and when (unix ms). */
export interface Stamp { by: string, at: number }

/** A comment. `body` is null once deleted (the tombstone keeps the thread's shape). */
export interface Comment {
  id: number
  thread: number
  author: string
  body: Body | null
  created_at: number
  edited_at: number | null
  deleted: Stamp | null
  /** Emoji → users who reacted with it. */
  reactions: Record<string, string[]>
}

/** A thread with its comments and where its anchor is now. */
export interface Thread {
  id: number
  /** The room's conversation sequence at its last change. */
  seq: number
  anchor: Anchor
  quote?: string
  metadata: Record<string, string | number | boolean>
  created_by: string
  created_at: number
  updated_at: number
  resolved: Stamp | null
  /** Set on tombstones, which `?since=` readers receive. */
  deleted?: Stamp
  comment_count: number
  participants: string[]
  position: Position
  comments: Comment[]
}

/** A chat message. */
export interface ChatMessage { id: number, author: string, body: Body, created_at: number }

/** Which of a document's conversations notify a user. */
export type NotificationLevel = 'all' | 'replies_and_mentions' | 'none'

/** An inbox entry. */
export interface Notification {
  id: number
  kind: 'mention' | 'reply' | 'thread' | 'review'
  document: string | null
  thread: number | null
  comment: number | null
  review: number | null
  actor: string
  excerpt: string | null
  created_at: number
  read_at: number | null
}

/** A review of a branch (or of a version). */
export interface Review {
  id: number
  document: string
  version: number | null
  requested_by: string
  comment: string | null
  reviewers: string[]
  state: 'pending' | 'approved' | 'changes_requested' | 'withdrawn'
  verdicts: Array<{ reviewer: string, verdict: 'approved' | 'changes_requested', comment: string | null, at: number }>
  created_at: number
  updated_at: number
}

/** An entry of the activity feed. */
export interface ActivityEntry {
  id: number
  document: string | null
  actor: string
  kind: string
  detail: Record<string, unknown>
  at: number
}

type Call = <T>(method: string, path: string, body?: unknown) => Promise<T>

const seg = (s: string): string => encodeURIComponent(s)
const doc = (project: string, name: string): string => `/projects/${seg(project)}/documents/${seg(name)}`
const query = (params: Record<string, string | number | boolean | undefined>): string => {
  const defined = Object.entries(params).filter(([, v]) => v !== undefined) as Array<[string, string | number | boolean]>
  return defined.length === 0 ? '' : `?${new URLSearchParams(defined.map(([k, v]) => [k, String(v)])).toString()}`
}

/** The conversation routes, over the API client's `call`. */
export function conversationRoutes (call: Call) {
  const thread = (p: string, d: string, t: number): string => `${doc(p, d)}/threads/${t}`
  const comment = (p: string, d: string, t: number, c: number): string => `${thread(p, d, t)}/comments/${c}`
  return {
    threads: {
      list: (p: string, d: string, page: { since?: number, after?: number, limit?: number, resolved?: boolean } = {}) =>
        call<{ threads: Thread[], next_after: number | null, seq: number }>('GET', `${doc(p, d)}/threads${query(page)}`),
      get: (p: string, d: string, t: number) => call<Thread>('GET', thread(p, d, t)),
      create: (p: string, d: string, body: { anchor: Anchor, body: Body, metadata?: Thread['metadata'] }) =>
        call<Thread>('POST', `${doc(p, d)}/threads`, body),
      resolve: (p: string, d: string, t: number, resolved = true) => call<Thread>('PATCH', thread(p, d, t), { resolved }),
      setMetadata: (p: string, d: string, t: number, metadata: Thread['metadata']) => call<Thread>('PATCH', thread(p, d, t), { metadata }),
      delete: (p: string, d: string, t: number) => call<Thread>('DELETE', thread(p, d, t))
    },
    comments: {
      add: (p: string, d: string, t: number, body: Body) => call<Comment>('POST', `${thread(p, d, t)}/comments`, { body }),
      edit: (p: string, d: string, t: number, c: number, body: Body) => call<Comment>('PATCH', comment(p, d, t, c), { body }),
      delete: (p: string, d: string, t: number, c: number) => call<Comment>('DELETE', comment(p, d, t, c))
    },
    reactions: {
      add: (p: string, d: string, t: number, c: number, emoji: string) => call<Comment>('PUT', `${comment(p, d, t, c)}/reactions/${seg(emoji)}`),
      remove: (p: string, d: string, t: number, c: number, emoji: string) => call<Comment>('DELETE', `${comment(p, d, t, c)}/reactions/${seg(emoji)}`)
    },
    chat: {
      list: (p: string, d: string, page: { before?: number, since?: number, limit?: number } = {}) =>
        call<{ messages: ChatMessage[], next_before: number | null }>('GET', `${doc(p, d)}/chat${query(page)}`),
      post: (p: string, d: string, body: Body) => call<ChatMessage>('POST', `${doc(p, d)}/chat`, { body })
    },
    subscription: {
      get: (p: string, d: string) => call<{ document: string, user: string, level: NotificationLevel }>('GET', `${doc(p, d)}/subscription`),
      set: (p: string, d: string, level: NotificationLevel) =>
        call<{ document: string, user: string, level: NotificationLevel }>('PUT', `${doc(p, d)}/subscription`, { level })
    },
    reviews: {
      list: (p: string, d: string, page: { before?: number, limit?: number } = {}) =>
        call<{ reviews: Review[], next_before: number | null }>('GET', `${doc(p, d)}/reviews${query(page)}`),
      request: (p: string, d: string, body: { reviewers: string[], version?: number, comment?: string }) =>
        call<Review>('POST', `${doc(p, d)}/reviews`, body),
      get: (p: string, d: string, r: number) => call<Review>('GET', `${doc(p, d)}/reviews/${r}`),
      submit: (p: string, d: string, r: number, verdict: 'approved' | 'changes_requested', comment?: string) =>
        call<Review>('POST', `${doc(p, d)}/reviews/${r}/verdicts`, { verdict, comment }),
      withdraw: (p: string, d: string, r: number) => call<Review>('DELETE', `${doc(p, d)}/reviews/${r}`)
    },
    activity: {
      project: (p: string, filter: { document?: string, actor?: string, kind?: string, before?: number, limit?: number } = {}) =>
        call<{ activity: ActivityEntry[], next_before: number | null }>('GET', `/projects/${seg(p)}/activity${query(filter)}`),
      document: (p: string, d: string, filter: { actor?: string, kind?: string, before?: number, limit?: number } = {}) =>
        call<{ activity: ActivityEntry[], next_before: number | null }>('GET', `${doc(p, d)}/activity${query(filter)}`)
    },
    inbox: {
      list: (p: string, page: { unread?: boolean, before?: number, limit?: number } = {}) =>
        call<{ notifications: Notification[], next_before: number | null }>('GET', `/projects/${seg(p)}/inbox${query(page)}`),
      count: (p: string) => call<{ unread: number }>('GET', `/projects/${seg(p)}/inbox/count`),
      /** Marks these notifications read, or all of them when `ids` is left out. */
      markRead: (p: string, ids?: number[]) => call<{ unread: number }>('POST', `/projects/${seg(p)}/inbox/read`, ids === undefined ? {} : { ids }),
      delete: (p: string, id: number) => call<{ deleted: boolean, unread: number }>('DELETE', `/projects/${seg(p)}/inbox/notifications/${id}`)
    }
  }
}

/** The conversation routes' type (`api.conversations`). */
export type ConversationRoutes = ReturnType<typeof conversationRoutes>

const base64 = (bytes: Uint8Array): string => {
  let bin = ''
  for (const b of bytes) bin += String.fromCharCode(b)
  return btoa(bin)
}
const unbase64 = (s: string): Uint8Array => Uint8Array.from(atob(s), (c) => c.charCodeAt(0))

/**
 * A text anchor for `[from, to)` of `text` (indices as Yjs counts them, UTF-16): the start sticks
 * to the first character, the end to the last, so text typed at either edge stays outside.
 */
export function textAnchor (text: Y.Text | Y.XmlText, from: number, to: number): Anchor {
  if (!(to > from)) throw new RangeError('a text anchor needs a non-empty range')
  return {
    type: 'text',
    start: base64(Y.encodeRelativePosition(Y.createRelativePositionFromTypeIndex(text, from, 0))),
    end: base64(Y.encodeRelativePosition(Y.createRelativePositionFromTypeIndex(text, to, -1)))
  }
}

/** A point anchor on a canvas, optionally on a node (`doc.getMap(map).get(key)`). */
export function pointAnchor (x: number, y: number, node?: { map: string, key: string }): Anchor {
  return node === undefined ? { type: 'point', x, y } : { type: 'point', x, y, node }
}

/**
 * Where a text anchor is in the local document (what the server's `position` says, without a
 * round trip): `{index, length}`, or null when its positions resolve to nothing here.
 */
export function resolveTextAnchor (doc: Y.Doc, anchor: Anchor): { index: number, length: number } | null {
  if (anchor.type !== 'text') return null
  const start = Y.createAbsolutePositionFromRelativePosition(Y.decodeRelativePosition(unbase64(anchor.start)), doc)
  const end = Y.createAbsolutePositionFromRelativePosition(Y.decodeRelativePosition(unbase64(anchor.end)), doc)
  if (start === null || end === null || start.type !== end.type) return null
  return { index: start.index, length: Math.max(0, end.index - start.index) }
}

/** A body of plain text paragraphs (one per line), with `@user` turned into mentions of `users`. */
export function textBody (text: string, users: Iterable<string> = []): Body {
  const known = [...users].sort((a, b) => b.length - a.length)
  return {
    content: text.split('\n').map((line) => {
      const children: Inline[] = []
      let rest = line
      let plain = ''
      while (rest.length > 0) {
        const at = rest.startsWith('@') ? known.find((u) => rest.startsWith(`@${u}`)) : undefined
        if (at !== undefined) {
          if (plain !== '') { children.push({ text: plain }); plain = '' }
          children.push({ type: 'mention', user: at })
          rest = rest.slice(at.length + 1)
        } else {
          plain += rest[0]
          rest = rest.slice(1)
        }
      }
      if (plain !== '' || children.length === 0) children.push({ text: plain === '' ? ' ' : plain })
      return { type: 'paragraph' as const, children }
    })
  }
}

/** A body as plain text (mentions as `@user`). */
export function bodyText (body: Body | null): string {
  if (body === null) return ''
  return body.content.map((p) => p.children.map((c) => {
    if (c.type === 'mention') return `@${c.user}`
    if (c.type === 'link') return c.text ?? c.url
    return c.text
  }).join('')).join('\n')
}

/** A live view: the current value, change notifications, and a stop function. */
export interface Live<T> {
  readonly current: T
  /** Why the last load failed (an `ApiError`, say), or null once a load succeeded. */
  readonly error: unknown
  on(fn: (value: T) => void): () => void
  /** Calls `fn` with the error of every load that fails; `current` stays as it was. */
  onError(fn: (error: unknown) => void): () => void
  /** Settles once the first load has been tried. */
  readonly ready: Promise<void>
  /** Fetches again now. */
  refresh(): Promise<void>
  stop(): void
}

function live<T> (initial: T, load: (current: T) => Promise<T>, conn: Connection | null, relevant: (e: ConversationEvent) => boolean, pollMs?: number): Live<T> {
  let current = initial
  let error: unknown = null
  const listeners = new Set<(value: T) => void>()
  const errorListeners = new Set<(error: unknown) => void>()
  let running: Promise<void> | null = null
  let again = false
  const refresh = async (): Promise<void> => {
    if (running !== null) { again = true; return await running }
    running = (async () => {
      do {
        again = false
        try {
          current = await load(current)
          error = null
          for (const fn of [...listeners]) fn(current)
        } catch (err) {
          // Kept as it was; the next event or poll tries again. Listeners hear why.
          error = err
          for (const fn of [...errorListeners]) fn(err)
        }
      } while (again)
    })()
    try { await running } finally { running = null }
  }
  const off = conn?.on('conversation', (e) => { if (relevant(e)) void refresh() }) ?? (() => {})
  const offStatus = conn?.on('status', ({ status }) => { if (status === 'synced') void refresh() }) ?? (() => {})
  const timer = pollMs === undefined ? null : setInterval(() => { void refresh() }, pollMs)
  const ready = refresh()
  return {
    get current () { return current },
    get error () { return error },
    ready,
    on (fn) { listeners.add(fn); return () => { listeners.delete(fn) } },
    onError (fn) { errorListeners.add(fn); return () => { errorListeners.delete(fn) } },
    refresh,
    stop () { off(); offStatus(); if (timer !== null) clearInterval(timer); listeners.clear(); errorListeners.clear() }
  }
}

/**
 * The threads of a document, kept current: loaded once, then on each pushed event only what
 * changed since the last sequence seen (`?since=`). Pass a connection made with `events: true`.
 */
export function subscribeThreads (routes: ConversationRoutes, project: string, document: string, conn: Connection | null): Live<Map<number, Thread>> {
  let seq = 0
  return live<Map<number, Thread>>(new Map(), async (current) => {
    const next = new Map(current)
    let after = 0
    const since = seq
    for (;;) {
      const page = await routes.threads.list(project, document, { since, after, limit: 100 })
      for (const t of page.threads) {
        if (t.deleted !== undefined) next.delete(t.id)
        else next.set(t.id, t)
      }
      seq = Math.max(seq, page.seq)
      if (page.next_after === null) break
      after = page.next_after
    }
    return next
  }, conn, (e) => e.thread !== null)
}

/** The newest chat messages of a document (oldest first), kept current from pushed events. */
export function subscribeChat (routes: ConversationRoutes, project: string, document: string, conn: Connection | null, { limit = 50 } = {}): Live<ChatMessage[]> {
  return live<ChatMessage[]>([], async (current) => {
    const last = current.length > 0 ? current[current.length - 1].id : undefined
    if (last === undefined) return (await routes.chat.list(project, document, { limit })).messages.reverse()
    const more = (await routes.chat.list(project, document, { since: last, limit: 100 })).messages
    return [...current, ...more].slice(-Math.max(limit, more.length))
  }, conn, (e) => e.type === 'chat.message.created')
}

/**
 * The caller's unread count and newest notifications, refreshed when the room on `conn` tells
 * of new notifications (`notification.created`) and every `pollMs` (notifications made in other
 * documents arrive there).
 */
export function subscribeInbox (routes: ConversationRoutes, project: string, conn: Connection | null, { pollMs = 30_000, limit = 20 } = {}): Live<{ unread: number, notifications: Notification[] }> {
  return live({ unread: 0, notifications: [] as Notification[] }, async () => {
    const [count, list] = await Promise.all([routes.inbox.count(project), routes.inbox.list(project, { limit })])
    return { unread: count.unread, notifications: list.notifications }
  }, conn, (e) => e.type === 'notification.created', pollMs)
}
