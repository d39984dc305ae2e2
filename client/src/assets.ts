// The asset library in the SDK (`api.assets`): the records the server answers, uploads that
// hash the file, send small ones in one request and large ones in parallel parts that survive
// failures, lost networks and reloads (`resumeUpload`), the library's queries, signed links,
// and `tandemx://asset/<id>@<version>`, the URI a document uses to point at an asset.
//
// Routes: docs/api.md, `src/edge/v1/assets.rs` and `src/edge/v1/uploads.rs`.

import { ApiError } from './api.js'
import { browserNetwork, persistently, type Attempts, type Network } from './network.js'
import { sha256Hex } from './sha256.js'

/** A licence of an asset: an SPDX id or free text, who to credit, where it came from. */
export interface Licence {
  spdx?: string | null
  text?: string | null
  attribution?: string | null
  source_url?: string | null
}

/** An asset: a named file with versions; the fields are those of its current version. */
export interface Asset {
  /** `ast_` and 20 hex digits. */
  id: string
  name: string
  content_type: string
  size: number
  /** 64 hex digits. */
  sha256: string
  /** The current version (1 for a new asset). */
  version: number
  uploader: string
  /** Unix milliseconds. */
  created_at: number
  updated_at: number
  tags: string[]
  licence: Licence | null
  /** Set while the asset is in the trash. */
  deleted_at: number | null
  /** When the trash empties itself of it. */
  purge_at: number | null
  /** How many documents refer to it. */
  used_by: number
  /** In the answer of an upload: the bytes were stored already, nothing was sent or stored. */
  deduplicated?: boolean
}

/** One version of an asset. */
export interface AssetVersion {
  version: number
  name: string
  content_type: string
  size: number
  sha256: string
  uploader: string
  created_at: number
}

/** A multipart upload in progress. */
export interface Upload {
  /** `upl_` and 20 hex digits. */
  id: string
  name: string
  content_type: string
  size: number
  sha256: string
  /** Every part but the last has exactly this many bytes. */
  part_size: number
  parts: number
  /** The asset it becomes a new version of, if any. */
  asset: string | null
  uploader: string
  created_at: number
  /** The upload is dropped (its parts too) after this. */
  expires_at: number
  /** The parts stored so far. */
  received: Array<{ part_number: number, size: number }>
  state: string
}

/** The project's storage against its limits (`GET /asset-usage`). */
export interface AssetStorage {
  /** Bytes stored (each distinct file once). */
  bytes: number
  files: number
  assets: number
  versions: number
  trashed: number
  by_content_type: Record<string, { bytes: number, files: number }>
  quota_bytes: number
  max_file_bytes: number
  /** The largest file sent in one request; larger ones go in parts. */
  direct_upload_bytes: number
}

/** A signed link: usable without credentials (in `<img src>`) until `expires_at` (unix ms). */
export interface AssetLink {
  url: string
  version: number
  expires_at: number
}

/** Preview sizes the server makes. */
export type PreviewWidth = 64 | 128 | 256 | 512 | 1024 | 2048
/** Preview formats the server makes. */
export type PreviewFormat = 'webp' | 'png' | 'jpeg'

/** Filters of `GET /assets`. */
export interface AssetQuery {
  /** Names starting with this (compared as bytes). */
  prefix?: string
  tag?: string
  /** A type, or a whole family such as `image/*`. */
  content_type?: string
  uploader?: string
  /** Only the trash (default: only what is not in it). */
  trashed?: boolean
  /** Only assets no document refers to. */
  orphans?: boolean
  limit?: number
  cursor?: string
}

/** The documents that refer to an asset. */
export interface AssetUsage {
  asset: string
  documents: Array<{ document: string, refs: number }>
  next_cursor: string | null
}

/** The assets a document refers to (as its room records them). */
export interface DocumentAssets {
  document: string
  /** `asset` is null when the referenced asset is gone. */
  assets: Array<{ id: string, refs: number, asset: Asset | null }>
}

/** What an upload is doing. */
export interface UploadProgress {
  /** `offline`: waiting for the browser to be online again. */
  phase: 'hashing' | 'uploading' | 'offline' | 'done'
  /** Bytes hashed (while hashing) or stored (after). */
  loaded: number
  total: number
}

/** Options of `upload` and `resumeUpload`. */
export interface UploadOptions {
  /** Display name (default: the File's name, else `file`). */
  name?: string
  tags?: string[]
  /** Upload a new version of this asset instead of a new asset. */
  asset?: string
  /** Default: the Blob's type; empty: the server names it from the bytes. */
  contentType?: string
  /** The file's SHA-256 when known already (it is hashed otherwise). */
  sha256?: string
  /** Aborts the upload; see `keepOnAbort`. */
  signal?: AbortSignal
  onProgress?: (progress: UploadProgress) => void
  /** Called once a multipart upload exists: keep `upload.id` to resume it after a reload. */
  onStart?: (upload: Upload) => void
  /** Bytes per part (5 MiB at least; default: the server's, 8 MiB). */
  partSize?: number
  /** Parts in flight at once (default 3). */
  concurrency?: number
  /** Files up to this size go in one request (default 8 MiB); larger ones in parts. */
  directLimit?: number
  /** Attempts per request after the first, for network failures and 408/429/5xx (default 5). */
  retries?: number
  /** The first retry's delay; each next one doubles, up to 15 s (default 500 ms). */
  retryDelayMs?: number
  /** Leave an aborted multipart upload on the server, to resume later (default: delete it). */
  keepOnAbort?: boolean
  /** Whether the browser is online, and when it is again (default: navigator and `online`). */
  network?: Network
}

/** Bytes a request's options can carry (a subset of `requestJson`'s). */
export interface SendInit {
  body?: unknown
  raw?: BodyInit
  headers?: Record<string, string>
  signal?: AbortSignal
}

/** How the asset routes reach the server; `TandemxApi` provides it. */
export interface AssetTransport {
  /** The server's http(s) base. */
  base (): string
  /** A request under `/v1`, its JSON answer, or an `ApiError`. */
  send<T>(method: string, path: string, init?: SendInit): Promise<T>
  /** A request under `/v1` whose answer is read as bytes (throws an `ApiError` when not 2xx/304). */
  fetch (path: string, init?: RequestInit): Promise<Response>
}

const MiB = 1024 * 1024
/** The smallest part R2 takes (all but the last). */
export const MIN_PART_SIZE = 5 * MiB
/** The server's part size when none is asked for. */
export const DEFAULT_PART_SIZE = 8 * MiB
/** R2 takes at most this many parts. */
export const MAX_PARTS = 10_000
/** Files up to this size go in one request unless told otherwise. */
export const DEFAULT_DIRECT_LIMIT = 8 * MiB

// --- URIs -------------------------------------------------------------------------------------

const ASSET_ID = /^ast_[0-9a-f]{20}$/
const ASSET_URI = /^tandemx:\/\/asset\/(ast_[0-9a-f]{20})(?:@([1-9][0-9]{0,15}))?$/

/** The URI a document uses to refer to an asset (`@version` pins one version). */
export function assetUri (id: string, version?: number): string {
  if (!ASSET_ID.test(id)) throw new RangeError(`not an asset id: ${id}`)
  if (version !== undefined && !(Number.isSafeInteger(version) && version >= 1)) throw new RangeError(`not a version: ${version}`)
  return version === undefined ? `tandemx://asset/${id}` : `tandemx://asset/${id}@${version}`
}

/** The asset (and version) of a `tandemx://asset/…` URI, or null when `s` is not one. */
export function parseAssetUri (s: string): { id: string, version?: number } | null {
  const m = ASSET_URI.exec(s)
  if (m === null) return null
  return m[2] === undefined ? { id: m[1] } : { id: m[1], version: Number(m[2]) }
}

// --- part plans -------------------------------------------------------------------------------

/** How a file of `size` bytes is cut into parts (the server's rule; it answers the same). */
export function planParts (size: number, partSize?: number): { partSize: number, parts: number } {
  if (!(Number.isSafeInteger(size) && size > 0)) throw new RangeError('a file has at least one byte')
  if (partSize !== undefined && partSize < MIN_PART_SIZE) throw new RangeError(`parts have at least ${MIN_PART_SIZE} bytes`)
  const chosen = partSize ?? Math.max(DEFAULT_PART_SIZE, Math.ceil(size / MAX_PARTS))
  const parts = Math.ceil(size / chosen)
  if (parts > MAX_PARTS) throw new RangeError(`${parts} parts: at most ${MAX_PARTS}; use larger parts`)
  return { partSize: chosen, parts }
}

/** The byte range `[start, end)` of part `n` (from 1). */
export function partRange (n: number, partSize: number, size: number): { start: number, end: number } {
  const start = (n - 1) * partSize
  if (n < 1 || start >= size) throw new RangeError(`no part ${n}`)
  return { start, end: Math.min(size, start + partSize) }
}

/** The parts of `upload` the server has not stored yet, in order. */
export function missingParts (upload: Pick<Upload, 'parts' | 'received'>): number[] {
  const have = new Set(upload.received.map((p) => p.part_number))
  const out: number[] = []
  for (let n = 1; n <= upload.parts; n++) if (!have.has(n)) out.push(n)
  return out
}

// --- the routes ------------------------------------------------------------------------------

const seg = (s: string): string => encodeURIComponent(s)
const query = (params: Record<string, string | number | boolean | undefined>): string => {
  const defined = Object.entries(params).filter(([, v]) => v !== undefined) as Array<[string, string | number | boolean]>
  return defined.length === 0 ? '' : `?${new URLSearchParams(defined.map(([k, v]) => [k, String(v)])).toString()}`
}

/** The asset routes over a transport (`api.assets`). */
export function assetRoutes (t: AssetTransport) {
  const project = (p: string): string => `/projects/${seg(p)}`
  const asset = (p: string, id: string): string => `${project(p)}/assets/${seg(id)}`
  const json = <T>(method: string, path: string, body?: unknown): Promise<T> => t.send<T>(method, path, body === undefined ? {} : { body })

  const list = (p: string, q: AssetQuery = {}) =>
    json<{ assets: Asset[], next_cursor: string | null }>('GET', `${project(p)}/assets${query({ ...q })}`)

  /** Every asset matching `q`, page after page (`limit` is the page size). */
  async function * all (p: string, q: Omit<AssetQuery, 'cursor'> = {}): AsyncGenerator<Asset> {
    let cursor: string | undefined
    do {
      const page = await list(p, { ...q, cursor })
      yield * page.assets
      cursor = page.next_cursor ?? undefined
    } while (cursor !== undefined)
  }

  const uploads = {
    create: (p: string, body: { name: string, size: number, sha256: string, content_type?: string, part_size?: number, asset?: string, tags?: string[] }, signal?: AbortSignal) =>
      t.send<{ complete: boolean, upload: Upload | null, asset: Asset | null }>('POST', `${project(p)}/uploads`, { body, signal }),
    get: (p: string, id: string, signal?: AbortSignal) => t.send<Upload>('GET', `${project(p)}/uploads/${seg(id)}`, { signal }),
    putPart: (p: string, id: string, n: number, bytes: Blob, signal?: AbortSignal) =>
      t.send<{ part_number: number, size: number }>('PUT', `${project(p)}/uploads/${seg(id)}/parts/${n}`, { raw: bytes, signal }),
    complete: (p: string, id: string, signal?: AbortSignal) => t.send<Asset>('POST', `${project(p)}/uploads/${seg(id)}/complete`, { signal }),
    /** Drops an upload and its parts. */
    abort: (p: string, id: string) => t.send<{ id: string, state: string }>('DELETE', `${project(p)}/uploads/${seg(id)}`)
  }

  /** A file in one request. */
  const direct = (p: string, file: Blob, o: { name: string, sha256: string, contentType: string, tags?: string[], asset?: string, signal?: AbortSignal }) => {
    const path = o.asset === undefined ? `${project(p)}/assets` : `${asset(p, o.asset)}/versions`
    const headers: Record<string, string> = { 'tandemx-sha256': o.sha256 }
    if (o.contentType !== '') headers['content-type'] = o.contentType
    const tags = o.tags !== undefined && o.tags.length > 0 ? o.tags.join(',') : undefined
    return t.send<Asset>('POST', `${path}${query({ name: o.name, tags })}`, { raw: file, headers, signal: o.signal })
  }

  /** Sends the parts of `upload` the server lacks, then completes it. */
  async function finish (p: string, upload: Upload, file: Blob, o: UploadOptions, a: Attempts, report: (loaded: number) => void): Promise<Asset> {
    const todo = missingParts(upload)
    let loaded = upload.received.reduce((sum, r) => sum + r.size, 0)
    report(loaded)
    // One part failing for good stops the others.
    const stop = new AbortController()
    const onAbort = (): void => stop.abort(o.signal?.reason)
    o.signal?.addEventListener('abort', onAbort, { once: true })
    const parts: Attempts = { ...a, signal: stop.signal }
    try {
      const worker = async (): Promise<void> => {
        try {
          for (let n = todo.shift(); n !== undefined; n = todo.shift()) {
            const { start, end } = partRange(n, upload.part_size, upload.size)
            const part = n
            await persistently(() => uploads.putPart(p, upload.id, part, file.slice(start, end), stop.signal), parts)
            loaded += end - start
            report(loaded)
          }
        } catch (err) {
          stop.abort(err)
          throw err
        }
      }
      const workers = Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 3, todo.length)) }, worker)
      const results = await Promise.allSettled(workers)
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
      if (failed !== undefined) throw stop.signal.reason ?? failed.reason
      return await completeOnce(p, upload, a)
    } catch (err) {
      if (o.signal?.aborted === true && o.keepOnAbort !== true) await uploads.abort(p, upload.id).catch(() => {})
      throw err
    } finally {
      o.signal?.removeEventListener('abort', onAbort)
    }
  }

  /**
   * Completes an upload. When an earlier attempt's answer was lost the upload is gone (404) but
   * the asset exists: it is found by its digest among the assets of that name.
   */
  async function completeOnce (p: string, upload: Upload, a: Attempts): Promise<Asset> {
    let lost = false
    try {
      return await persistently(async () => {
        try {
          return await uploads.complete(p, upload.id, a.signal)
        } catch (err) {
          if (err instanceof ApiError && err.status === 0) lost = true
          throw err
        }
      }, a)
    } catch (err) {
      if (!(lost && err instanceof ApiError && err.status === 404)) throw err
      if (upload.asset !== null) {
        const found = await routes.get(p, upload.asset)
        if (found.sha256 === upload.sha256) return found
      } else {
        const page = await list(p, { prefix: upload.name, limit: 100 })
        const found = page.assets.filter((x) => x.sha256 === upload.sha256 && x.name === upload.name && x.created_at >= upload.created_at)
        if (found.length > 0) return found.sort((x, y) => y.created_at - x.created_at)[0]
      }
      throw err
    }
  }

  const attempts = (o: UploadOptions, progress: (offline: boolean) => void): Attempts => ({
    retries: o.retries ?? 5,
    delayMs: o.retryDelayMs ?? 500,
    network: o.network ?? browserNetwork,
    signal: o.signal,
    onOffline: progress
  })

  const routes = {
    list,
    all,
    get: (p: string, id: string) => json<Asset>('GET', asset(p, id)),
    /** Renames it, or sets (`null`: clears) its licence. */
    update: (p: string, id: string, body: { name?: string, licence?: Licence | null }) => json<Asset>('PATCH', asset(p, id), body),
    tag: (p: string, id: string, tag: string) => json<Asset>('PUT', `${asset(p, id)}/tags/${seg(tag)}`),
    untag: (p: string, id: string, tag: string) => json<Asset>('DELETE', `${asset(p, id)}/tags/${seg(tag)}`),
    /** Moves it to the trash; `force` even while documents refer to it (refused with 409 otherwise). */
    delete: (p: string, id: string, { force }: { force?: boolean } = {}) => json<Asset>('DELETE', `${asset(p, id)}${query({ force })}`),
    restore: (p: string, id: string) => json<Asset>('POST', `${asset(p, id)}/restore`),
    /** Deletes a trashed asset for good (its bytes too, when nothing else has them). */
    purge: (p: string, id: string) => json<{ id: string, purged: boolean }>('POST', `${asset(p, id)}/purge`),
    versions: (p: string, id: string) => json<{ versions: AssetVersion[] }>('GET', `${asset(p, id)}/versions`),
    usage: (p: string, id: string, page: { limit?: number, cursor?: string } = {}) => json<AssetUsage>('GET', `${asset(p, id)}/usage${query(page)}`),
    documentAssets: (p: string, document: string) => json<DocumentAssets>('GET', `${project(p)}/documents/${seg(document)}/assets`),
    storage: (p: string) => json<AssetStorage>('GET', `${project(p)}/asset-usage`),
    /** A signed URL of a version's content (default: the current one) or of its preview. */
    signedUrl: (p: string, id: string, o: { version?: number, expiresIn?: number, download?: boolean, preview?: { w: PreviewWidth, format?: PreviewFormat } } = {}) =>
      json<AssetLink>('POST', `${asset(p, id)}/links`, {
        version: o.version,
        expires_in: o.expiresIn,
        download: o.download,
        preview: o.preview === undefined ? undefined : { w: o.preview.w, format: o.preview.format ?? 'webp' }
      }),
    /** The bytes of the current version, or of `version`. */
    content: async (p: string, id: string, { version, signal }: { version?: number, signal?: AbortSignal } = {}): Promise<Blob> =>
      await (await t.fetch(version === undefined ? `${asset(p, id)}/content` : `${asset(p, id)}/versions/${version}/content`, { signal })).blob(),
    /** A preview image (answers 500 `not-configured` on servers without the previews worker). */
    preview: async (p: string, id: string, o: { w: PreviewWidth, format?: PreviewFormat, version?: number, signal?: AbortSignal }): Promise<Blob> =>
      await (await t.fetch(`${asset(p, id)}/preview${query({ w: o.w, format: o.format, version: o.version })}`, { signal: o.signal })).blob(),
    uploads,

    /**
     * Uploads a file: hashed first (see `sha256Hex` for the memory it takes), then sent in one
     * request up to `directLimit`, else in parts, `concurrency` at a time. Each request is
     * retried with backoff; an offline browser waits for the network and goes on. When the
     * project has these bytes already, nothing is sent (`deduplicated: true`).
     */
    async upload (p: string, file: Blob, o: UploadOptions = {}): Promise<Asset> {
      const total = file.size
      let phase: UploadProgress['phase'] = 'hashing'
      let loaded = 0
      const tell = (): void => o.onProgress?.({ phase, loaded, total })
      const sha256 = o.sha256 ?? await sha256Hex(file, { signal: o.signal, onProgress: (n) => { loaded = n; tell() } })
      o.signal?.throwIfAborted()
      phase = 'uploading'
      loaded = 0
      tell()
      const a = attempts(o, (offline) => { phase = offline ? 'offline' : 'uploading'; tell() })
      const name = o.name ?? ((file as File).name || 'file')
      const contentType = o.contentType ?? file.type
      const done = (made: Asset): Asset => { phase = 'done'; loaded = total; tell(); return made }

      if (total <= (o.directLimit ?? DEFAULT_DIRECT_LIMIT)) {
        try {
          return done(await persistently(() => direct(p, file, { name, sha256, contentType, tags: o.tags, asset: o.asset, signal: o.signal }), a))
        } catch (err) {
          // This server takes less in one request than we thought: in parts, then.
          if (!(err instanceof ApiError && err.code === 'body-too-large' && total > MIN_PART_SIZE)) throw err
        }
      }
      const created = await persistently(() => uploads.create(p, {
        name,
        size: total,
        sha256,
        content_type: contentType === '' ? undefined : contentType,
        part_size: o.partSize,
        asset: o.asset,
        tags: o.tags
      }, o.signal), a)
      if (created.complete && created.asset !== null) return done(created.asset)
      if (created.upload === null) throw new Error('the server started no upload')
      o.onStart?.(created.upload)
      return done(await finish(p, created.upload, file, o, a, (n) => { loaded = n; tell() }))
    },

    /**
     * Goes on with a multipart upload (after a failure, an abort with `keepOnAbort`, or a
     * reload): asks which parts the server has and sends only the others. `file` must be the
     * same bytes; the server checks them against the digest when completing.
     */
    async resumeUpload (p: string, uploadId: string, file: Blob, o: Omit<UploadOptions, 'name' | 'tags' | 'asset' | 'partSize' | 'directLimit' | 'sha256'> = {}): Promise<Asset> {
      let phase: UploadProgress['phase'] = 'uploading'
      let loaded = 0
      const tell = (): void => o.onProgress?.({ phase, loaded, total: file.size })
      const a = attempts(o, (offline) => { phase = offline ? 'offline' : 'uploading'; tell() })
      const upload = await persistently(() => uploads.get(p, uploadId, o.signal), a)
      if (upload.size !== file.size) throw new RangeError(`upload ${uploadId} is of ${upload.size} bytes, the file of ${file.size}`)
      o.onStart?.(upload)
      const made = await finish(p, upload, file, o, a, (n) => { loaded = n; tell() })
      phase = 'done'
      loaded = file.size
      tell()
      return made
    }
  }
  return routes
}

/** The asset routes' type (`api.assets`). */
export type AssetRoutes = ReturnType<typeof assetRoutes>
