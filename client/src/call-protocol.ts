// The call frames of TandemX's /signal socket (docs/calls.md) as the SDK reads them, the errors
// they become, and where the socket and the ICE servers are.

import { ApiError, httpBase, requestJson, type Role } from './api.js'
import type { SignalData } from './call-link.js'

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
  const u = new URL(server)
  if (u.protocol === 'http:') u.protocol = 'ws:'
  else if (u.protocol === 'https:') u.protocol = 'wss:'
  else if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new Error(`unsupported server URL ${server}`)
  const path = u.pathname.replace(/\/+$/, '').replace(/\/(rooms|signal)$/, '')
  return `${u.protocol}//${u.host}${path}/signal`
}

/** `GET /v1/projects/{project}/ice-servers`: what `RTCPeerConnection` takes. */
export async function fetchIceServers (server: string, project: string, token: string | null, fetchFn: typeof fetch = (i, o) => globalThis.fetch(i, o)): Promise<RTCIceServer[]> {
  const base = httpBase(signalUrl(server).replace(/\/signal$/, ''))
  const answer = await requestJson<{ iceServers?: unknown }>(fetchFn, 'GET', `${base}/v1/projects/${encodeURIComponent(project)}/ice-servers`,
    token !== null ? { apiKey: token } : {})
  if (!Array.isArray(answer.iceServers)) throw new ApiError(200, null, 'ice-servers: the answer has no iceServers list')
  return answer.iceServers as RTCIceServer[]
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
