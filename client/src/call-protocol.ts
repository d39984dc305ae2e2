// The call frames of TandemX's /signal socket (docs/calls.md) as the SDK reads them, the errors
// they become, and where the socket and the ICE servers are.

import { ApiError, httpBase, requestJson, type Role } from './api.js'
import type { SignalData } from './call-link.js'
import { wsUrl } from './connect.js'

/** Close code of a socket whose token, key or member was revoked (docs/signalling.md). */
export const CLOSE_REVOKED = 4403
/** Close code of a socket that sent too much (docs/signalling.md). */
export const CLOSE_RATE_LIMITED = 4429

/**
 * The exact keep-alive frame the runtime answers without waking the hub (docs/signalling.md):
 * byte for byte, or it reaches the hub.
 */
export const PING = '{"type":"ping"}'

/** A refusal of the hub (an error frame) or a failure of the SDK; `code` says which. */
export class CallError extends Error {
  /**
   * The hub's error code (`forbidden-media`, `not-in-call`, `bad-room`, …, docs/calls.md), or
   * the SDK's own: `closed` (the socket closed), `timeout`, `token` (getToken failed),
   * `ice-servers` (fetching them failed), `media` (getUserMedia failed), `negotiation-failed`
   * (a description or candidate from one participant could not be applied), `connection-failed`
   * (ICE with one participant failed).
   */
  readonly code: string
  /** The close code, for `closed`. */
  readonly closeCode?: number
  /** The participant concerned, for `connection-failed`. */
  readonly peer?: number

  constructor (code: string, message: string, options?: { cause?: unknown, closeCode?: number, peer?: number }) {
    super(message, options)
    this.name = 'CallError'
    this.code = code
    if (options?.closeCode !== undefined) this.closeCode = options.closeCode
    if (options?.peer !== undefined) this.peer = options.peer
  }
}

/** The call has its limit of participants: `joinCall` rejects with this. */
export class CallFullError extends CallError {
  /** The call's participant limit. */
  readonly limit: number

  constructor (message: string, limit: number) {
    super('call-full', message)
    this.name = 'CallFullError'
    this.limit = limit
  }
}

/**
 * The signalling socket's URL: `ws(s)://host/signal`. Accepts an http(s) or ws(s) server URL,
 * with or without a trailing `/rooms` or `/signal`.
 */
export function signalUrl (server: string): string {
  return `${wsUrl(server).replace(/\/(rooms|signal)$/, '')}/signal`
}

/**
 * What `fetchIceServers` resolves with: the list `RTCPeerConnection` takes (an array, as before),
 * with the lifetime of its TURN credentials.
 */
export type IceServerList = RTCIceServer[] & {
  /** When the credentials expire: the answer's `expires_at` (unix ms), or null without one. */
  expiresAt: number | null
  /** Their lifetime in seconds: the answer's `ttl`, or null without one. */
  ttl: number | null
}

/** `GET /v1/projects/{project}/ice-servers`: what `RTCPeerConnection` takes, and until when. */
export async function fetchIceServers (server: string, project: string, token: string | null, fetchFn: typeof fetch = (i, o) => globalThis.fetch(i, o)): Promise<IceServerList> {
  const base = httpBase(signalUrl(server).replace(/\/signal$/, ''))
  const answer = await requestJson<{ iceServers?: unknown, ttl?: unknown, expires_at?: unknown }>(fetchFn, 'GET', `${base}/v1/projects/${encodeURIComponent(project)}/ice-servers`,
    token !== null ? { apiKey: token } : {})
  if (!Array.isArray(answer.iceServers)) throw new ApiError(200, null, 'ice-servers: the answer has no iceServers list')
  const finite = (v: unknown): number | null => typeof v === 'number' && Number.isFinite(v) ? v : null
  return Object.assign([...answer.iceServers] as RTCIceServer[], { expiresAt: finite(answer.expires_at), ttl: finite(answer.ttl) })
}

/** When to fetch fresh ICE servers, and when the current ones stop working (unix ms). */
export interface IceSchedule {
  refreshAt: number
  expiresAt: number
}

/** Fresh servers are fetched at least this long before the credentials expire. */
export const ICE_REFRESH_MARGIN_MS = 30_000

/**
 * When the ICE servers of `list`, received at `now` (unix ms), are due for a refresh: at 80%
 * of the credentials' lifetime and at least `ICE_REFRESH_MARGIN_MS` before they expire
 * (halfway through a lifetime under a minute). Null when there is nothing to refresh: no
 * server with a `credential` (STUN only), or no known lifetime.
 *
 * The lifetime is the answer's `ttl` when it has one: it counts from the answer, so a machine
 * whose clock is off still refreshes in time; `expires_at` (unix ms) is the fallback.
 */
export function iceSchedule (list: IceServerList, now: number): IceSchedule | null {
  if (!list.some((s) => typeof s.credential === 'string' && s.credential !== '')) return null
  const lifetime = list.ttl !== null ? list.ttl * 1000 : list.expiresAt !== null ? list.expiresAt - now : null
  if (lifetime === null || !(lifetime > 0)) return null
  const due = Math.max(lifetime / 2, Math.min(lifetime * 0.8, lifetime - ICE_REFRESH_MARGIN_MS))
  return { refreshAt: now + due, expiresAt: now + lifetime }
}

/** What the hub says about a participant. */
export interface WireParticipant { peer: number, user: string, role: Role, publish: boolean, audio: boolean, video: boolean }

/** A frame from the hub (fields as docs/calls.md has them). */
export interface Frame {
  type: string
  room?: string
  error?: string
  message?: string
  limit?: number
  self?: number
  publish?: boolean
  participants?: WireParticipant[]
  participant?: WireParticipant
  peer?: number
  from?: number
  audio?: boolean
  video?: boolean
  data?: SignalData
}

/** The error an error frame tells of: `CallFullError` for `call-full`, else a `CallError`. */
export function errorOf (f: Frame): CallError {
  const code = f.error ?? 'error'
  const message = f.message ?? code
  return code === 'call-full' ? new CallFullError(message, f.limit ?? 0) : new CallError(code, message)
}
