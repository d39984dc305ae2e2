// Typed client for TandemX's HTTP API (`/v1`, `Authorization: Bearer <api key>`).
//
// Written by hand while there is no OpenAPI document: every route is one line in `TandemxApi`
// below, so the file is easy to regenerate or replace later. Errors are RFC 9457 problem details
// (`application/problem+json`), thrown as `ApiError`.

import { assetRoutes, type SendInit } from './assets.js'
import { conversationRoutes } from './conversations.js'

/** An RFC 9457 problem details body as TandemX sends it. */
export interface Problem {
  type: string
  title: string
  status: number
  detail?: string
  /** A short stable word, e.g. `invalid-room-name`. */
  error?: string
  [extension: string]: unknown
}

/** A non-2xx answer (or a network failure, with `status` 0). */
export class ApiError extends Error {
  /** HTTP status; 0 when no answer arrived. */
  readonly status: number
  /** The problem body, when the server sent one. */
  readonly problem: Problem | null

  constructor (status: number, problem: Problem | null, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ApiError'
    this.status = status
    this.problem = problem
  }

  /** The problem's `error` word, if any. */
  get code (): string | undefined {
    return this.problem?.error
  }
}

/** Roles, from least to most power. */
export type Role = 'viewer' | 'commenter' | 'editor' | 'owner'

/** A project. */
export interface Project {
  id: string
  name: string
  /** Unix milliseconds. */
  created_at: number
  /** Days of history kept; null: the default (30), 0: everything. */
  history_retention_days?: number | null
  /** A branch merges only with an approved review (owners excepted). */
  require_review_for_merge?: boolean
  /** Seconds an unread notification waits before its `notification.created` webhook. */
  notification_delay_seconds?: number
  /** Participants per call, 2 to 8 (docs/calls.md). */
  call_max_participants?: number
  /** Whether viewers and commenters may send audio and video in calls. */
  call_viewers_publish?: boolean
}

/** A stored version of a document (docs/history.md). */
export interface Version {
  id: number
  kind: 'auto' | 'named' | 'restore' | 'merge' | 'fork'
  name?: string
  description?: string
  author: string
  /** Who changed the document since the previous version. */
  authors: string[]
  /** Unix milliseconds. */
  at: number
  /** The last log entry the version includes. */
  seq: number
  bytes: number
  storage: 'sql' | 'r2'
}

/** What changed between two states, root by root (see docs/history.md). */
export interface Changes {
  roots: Array<{ root: string, kind: 'text' | 'map' | 'array' | 'xml' | 'other', [field: string]: unknown }>
}

/** One stored update of the replay log; `update` is base64 of a v1 Yjs update. */
export interface LoggedUpdate {
  seq: number
  at: number
  author: string
  update: string
}

/** Answer of `GET …/diff`: what changed from `from` to `to`, and who changed it. */
export interface Diff {
  from: number | 'current'
  to: number | 'current'
  from_seq: number
  to_seq: number
  /** Authors of the log entries in between. */
  authors: string[]
  changes: Changes
}

/** One page of `GET …/history`. */
export interface Replay {
  updates: LoggedUpdate[]
  /** Pass as `after` for the next page; null on the last page. */
  next_after: number | null
  /** The oldest entry still kept, or null when the log is empty. */
  earliest: { seq: number, at: number } | null
}

/** Answer of `GET …/merge`: what merging the branch would change in its parent. */
export interface MergePreview {
  branch: string
  parent: string
  authors: string[]
  changes: Changes
}

/** Answer of `POST …/merge`. */
export interface Merged {
  changed: boolean
  branch: string
  parent: string
  authors: string[]
  /** The merge version, when something changed. */
  version?: Version
}

/** A branch of a document. */
export interface Branch {
  name: string
  parent: string
  fork_version: number | null
  fork_seq: number
  base_seq: number
  created_at: number
  created_by: string
  merged_at: number | null
  merges: number
  /** Changes on the branch since the fork. */
  ahead: number | null
  /** Changes on the parent since the fork. */
  behind: number | null
}

/** Answer of `POST /v1/projects`: the project and its first owner key (secret shown once). */
export interface ProjectCreated {
  project: Project
  key: KeyCreated
}

/** A project member. */
export interface Member {
  sub: string
  role: Role
  /** Unix milliseconds. */
  created_at?: number
  updated_at?: number
}

/** An API key as listed (never with its secret). */
export interface ApiKey {
  id: string
  name: string
  role: Role
  project_id?: string
  created_at: number
  last_used_at?: number | null
  revoked_at?: number | null
}

/** A new API key; `secret` (`tx_key_...`) is shown only in this answer. */
export interface KeyCreated {
  id: string
  name: string
  role: Role
  secret: string
  created_at: number
}

/** A document (room) of a project. */
export interface DocumentInfo {
  name: string
  created_by?: string
  /** Unix milliseconds. */
  created_at?: number
}

/** A document's content: root types as plain JSON (texts as strings, maps as objects, ...). */
export interface DocumentContent {
  name: string
  content: Record<string, unknown>
}

/** One server-side edit; `path` starts with a root type's name. */
export type EditOp =
  | { op: 'map.set', path: (string | number)[], key: string, value: unknown }
  | { op: 'map.delete', path: (string | number)[], key: string }
  | { op: 'text.insert', path: (string | number)[], index: number, text: string }
  | { op: 'text.delete', path: (string | number)[], index: number, length: number }
  | { op: 'array.push', path: (string | number)[], values: unknown[] }
  | { op: 'array.insert', path: (string | number)[], index: number, values: unknown[] }
  | { op: 'array.delete', path: (string | number)[], index: number, length: number }

/** Answer of a document write. */
export interface Applied {
  changed: boolean
  bytes: number
}

/** Answer of a DELETE. */
export type Deleted = Record<string, string>

/** Body of `POST /v1/projects/{project}/tokens`. */
export interface RoomTokenRequest {
  sub: string
  /** A room name, a prefix ending in `*`, or `*`. */
  room: string
  role?: Role
  name?: string
  color?: string
  /** 1 to 86400. */
  ttl_seconds?: number
}

/** A minted room token; `expires_at` in unix seconds. */
export interface RoomToken {
  token: string
  expires_at: number
  room?: string
  role?: Role
  sub?: string
}

/** Options of `TandemxApi`. */
export interface ApiOptions {
  /** The server, e.g. `https://tandemx.example.com` (ws:// and wss:// are accepted too). */
  baseUrl: string
  /** API key (or a room token) sent as `Authorization: Bearer`. */
  apiKey?: string
  /**
   * The user an API key acts for on conversation routes (`TandemX-Subject`): comments are
   * theirs, within the lower of the key's and their role. Tokens act for their own subject.
   */
  subject?: string
  /** fetch implementation (default: the global one). */
  fetch?: typeof fetch
}

/** The http(s) origin (plus any base path) of a TandemX server URL, without a trailing slash. */
export function httpBase (url: string): string {
  const u = new URL(url)
  if (u.protocol === 'ws:') u.protocol = 'http:'
  else if (u.protocol === 'wss:') u.protocol = 'https:'
  const path = u.pathname.replace(/\/+$/, '').replace(/\/rooms$/, '')
  return `${u.protocol}//${u.host}${path}`
}

const seg = (s: string): string => encodeURIComponent(s)
const doc = (project: string, name: string): string => `/projects/${seg(project)}/documents/${seg(name)}`
/** A query string of the defined values. */
const query = (params: Record<string, string | number | undefined>): string => {
  const defined = Object.entries(params).filter(([, v]) => v !== undefined) as Array<[string, string | number]>
  return defined.length === 0 ? '' : `?${new URLSearchParams(defined.map(([k, v]) => [k, String(v)])).toString()}`
}

/** Sends one request and decodes the JSON answer, or throws `ApiError`. */
export async function requestJson<T> (
  fetchFn: typeof fetch,
  method: string,
  url: string,
  { body, raw, headers: extra, signal, apiKey, subject }: {
    body?: unknown
    /** A body sent as it is (a file), instead of `body` as JSON. */
    raw?: BodyInit
    headers?: Record<string, string>
    signal?: AbortSignal
    apiKey?: string
    subject?: string
  } = {}
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json, application/problem+json' }
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (apiKey !== undefined) headers.authorization = `Bearer ${apiKey}`
  if (subject !== undefined) headers['tandemx-subject'] = subject
  Object.assign(headers, extra)
  let res: Response
  try {
    res = await fetchFn(url, { method, headers, body: raw ?? (body === undefined ? undefined : JSON.stringify(body)), signal })
  } catch (err) {
    // An abort is the caller's own doing: it stays an abort, not a network failure.
    if (signal?.aborted === true) throw signal.reason
    throw new ApiError(0, null, `${method} ${url}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }
  const text = await res.text()
  if (!res.ok) {
    let problem: Problem | null = null
    try {
      const parsed = JSON.parse(text) as Partial<Problem>
      if (parsed !== null && typeof parsed === 'object') {
        problem = { type: 'about:blank', title: res.statusText, status: res.status, ...parsed }
      }
    } catch {
      // not JSON: keep the status only
    }
    const what = problem?.detail ?? problem?.title ?? (text.slice(0, 200) || res.statusText)
    throw new ApiError(res.status, problem, `${method} ${new URL(url).pathname} -> ${res.status}: ${what}`)
  }
  if (res.status === 204 || text === '') return undefined as T
  return JSON.parse(text) as T
}

/** The `/v1` HTTP API (routes as in docs/api.md). */
export class TandemxApi {
  private readonly base: string
  private readonly apiKey: string | undefined
  private readonly subject: string | undefined
  private readonly fetchFn: typeof fetch

  constructor (options: ApiOptions) {
    this.base = httpBase(options.baseUrl)
    this.apiKey = options.apiKey
    this.subject = options.subject
    this.fetchFn = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  }

  private call<T> (method: string, path: string, body?: unknown): Promise<T> {
    return requestJson<T>(this.fetchFn, method, `${this.base}/v1${path}`, { body, apiKey: this.apiKey, subject: this.subject })
  }

  /** Threads, comments, reactions, chat, reviews, activity and the inbox (docs/conversations.md). */
  readonly conversations = conversationRoutes(<T>(method: string, path: string, body?: unknown) => this.call<T>(method, path, body))

  /** The asset library: uploads (direct and resumable), the library, links, usage (assets.ts). */
  readonly assets = assetRoutes({
    base: () => this.base,
    send: <T>(method: string, path: string, init: SendInit = {}) =>
      requestJson<T>(this.fetchFn, method, `${this.base}/v1${path}`, { ...init, apiKey: this.apiKey, subject: this.subject }),
    fetch: async (path: string, init: RequestInit = {}) => {
      const headers = new Headers(init.headers)
      if (this.apiKey !== undefined) headers.set('authorization', `Bearer ${this.apiKey}`)
      const url = `${this.base}/v1${path}`
      let res: Response
      try {
        res = await this.fetchFn(url, { ...init, headers })
      } catch (err) {
        if (init.signal?.aborted === true) throw init.signal.reason
        throw new ApiError(0, null, `GET ${url}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
      }
      if (!res.ok && res.status !== 304) await requestJson(async () => res, init.method ?? 'GET', url) // throws the ApiError
      return res
    }
  })

  private async bytes (method: string, path: string, body?: Uint8Array): Promise<Response> {
    const headers: Record<string, string> = {}
    if (this.apiKey !== undefined) headers.authorization = `Bearer ${this.apiKey}`
    if (body !== undefined) headers['content-type'] = 'application/octet-stream'
    const url = `${this.base}/v1${path}`
    const res = await this.fetchFn(url, { method, headers, body: body as BodyInit | undefined })
    if (!res.ok) await requestJson(async () => res, method, url) // throws the ApiError
    return res
  }

  /** Projects (creating one takes the admin secret as the key). */
  readonly projects = {
    create: (body: { name: string }) => this.call<ProjectCreated>('POST', '/projects', body),
    get: (project: string) => this.call<Project>('GET', `/projects/${seg(project)}`),
    update: (project: string, body: { name?: string, history_retention_days?: number | null, require_review_for_merge?: boolean, notification_delay_seconds?: number, call_max_participants?: number, call_viewers_publish?: boolean }) =>
      this.call<Project>('PATCH', `/projects/${seg(project)}`, body),
    delete: (project: string) => this.call<Deleted>('DELETE', `/projects/${seg(project)}`)
  }

  /** Members of a project. */
  readonly members = {
    list: (project: string) => this.call<{ members: Member[] }>('GET', `/projects/${seg(project)}/members`),
    put: (project: string, sub: string, body: { role: Role }) =>
      this.call<Member>('PUT', `/projects/${seg(project)}/members/${seg(sub)}`, body),
    remove: (project: string, sub: string) => this.call<Deleted>('DELETE', `/projects/${seg(project)}/members/${seg(sub)}`)
  }

  /** API keys of a project. */
  readonly keys = {
    list: (project: string) => this.call<{ keys: ApiKey[] }>('GET', `/projects/${seg(project)}/keys`),
    create: (project: string, body: { name: string, role: Role }) => this.call<KeyCreated>('POST', `/projects/${seg(project)}/keys`, body),
    revoke: (project: string, key: string) => this.call<Deleted>('DELETE', `/projects/${seg(project)}/keys/${seg(key)}`)
  }

  /** Documents (rooms) of a project, read and written without a WebSocket. */
  readonly documents = {
    list: (project: string) => this.call<{ documents: DocumentInfo[] }>('GET', `/projects/${seg(project)}/documents`),
    create: (project: string, body: { name: string }) =>
      this.call<DocumentInfo>('POST', `/projects/${seg(project)}/documents`, body),
    delete: (project: string, name: string) => this.call<Deleted>('DELETE', `/projects/${seg(project)}/documents/${seg(name)}`),
    /** The content as plain JSON. */
    get: (project: string, name: string) => this.call<DocumentContent>('GET', `/projects/${seg(project)}/documents/${seg(name)}`),
    /** Applies edit operations server-side. */
    edit: (project: string, name: string, ops: EditOp[]) =>
      this.call<Applied>('POST', `/projects/${seg(project)}/documents/${seg(name)}/edits`, { ops }),
    /** The document as a Yjs update (v1), or only what a client with `stateVector` lacks. */
    getUpdate: async (project: string, name: string, stateVector?: Uint8Array): Promise<Uint8Array> => {
      let query = ''
      if (stateVector !== undefined) {
        let bin = ''
        for (const b of stateVector) bin += String.fromCharCode(b)
        query = `?state_vector=${encodeURIComponent(btoa(bin))}`
      }
      const res = await this.bytes('GET', `/projects/${seg(project)}/documents/${seg(name)}/update${query}`)
      return new Uint8Array(await res.arrayBuffer())
    },
    /** Applies a Yjs update (v1). */
    applyUpdate: async (project: string, name: string, update: Uint8Array): Promise<Applied> => {
      const res = await this.bytes('POST', `/projects/${seg(project)}/documents/${seg(name)}/update`, update)
      return await res.json() as Applied
    }
  }

  /** A document's history: versions, diff, restore, replay, branches (docs/history.md). */
  readonly history = {
    versions: (project: string, name: string, page: { limit?: number, before?: number } = {}) =>
      this.call<{ versions: Version[], next_before: number | null }>('GET', `${doc(project, name)}/versions${query(page)}`),
    createVersion: (project: string, name: string, body: { name: string, description?: string }) =>
      this.call<Version>('POST', `${doc(project, name)}/versions`, body),
    version: (project: string, name: string, id: number) =>
      this.call<{ version: Version, content: Record<string, unknown> }>('GET', `${doc(project, name)}/versions/${id}`),
    /** A version's whole state as a v1 Yjs update. */
    versionUpdate: async (project: string, name: string, id: number): Promise<Uint8Array> =>
      new Uint8Array(await (await this.bytes('GET', `${doc(project, name)}/versions/${id}/update`)).arrayBuffer()),
    deleteVersion: (project: string, name: string, id: number) =>
      this.call<Deleted>('DELETE', `${doc(project, name)}/versions/${id}`),
    /** Restores a version as a new change every client converges to. */
    restore: (project: string, name: string, id: number) =>
      this.call<{ changed: boolean, restored: Version, version?: Version }>('POST', `${doc(project, name)}/versions/${id}/restore`),
    /** Compares version `from` with version `to` (default: the current state). */
    diff: (project: string, name: string, from: number | 'current', to: number | 'current' = 'current') =>
      this.call<Diff>('GET', `${doc(project, name)}/diff${query({ from, to })}`),
    /** One page of the stored updates, in order. */
    replay: (project: string, name: string, range: { from?: number, to?: number, after?: number, limit?: number } = {}) =>
      this.call<Replay>('GET', `${doc(project, name)}/history${query(range)}`),
    /** The document as it was at `t` (unix ms). */
    at: (project: string, name: string, t: number) =>
      this.call<{ t: number, seq: number, content: Record<string, unknown> }>('GET', `${doc(project, name)}/history/at${query({ t })}`),
    /** The document as it was at `t` (unix ms), as a v1 Yjs update of that whole state. */
    atUpdate: async (project: string, name: string, t: number): Promise<Uint8Array> =>
      new Uint8Array(await (await this.bytes('GET', `${doc(project, name)}/history/at${query({ t, format: 'update' })}`)).arrayBuffer()),
    branches: (project: string, name: string) =>
      this.call<{ branches: Branch[], next_cursor: string | null }>('GET', `${doc(project, name)}/branches`),
    /** Forks `name` (now, or at `version`) into the new document `body.name`. */
    branch: (project: string, name: string, body: { name: string, version?: number }) =>
      this.call<Branch>('POST', `${doc(project, name)}/branches`, body),
    /** What merging the branch `name` into its parent would change. */
    previewMerge: (project: string, name: string) =>
      this.call<MergePreview>('GET', `${doc(project, name)}/merge`),
    merge: (project: string, name: string) =>
      this.call<Merged>('POST', `${doc(project, name)}/merge`)
  }

  /** Room tokens (JWTs for `ws://host/rooms/{room}?token=`). */
  readonly tokens = {
    create: (project: string, body: RoomTokenRequest) => this.call<RoomToken>('POST', `/projects/${seg(project)}/tokens`, body)
  }
}
