// Room tokens for `connect({ getToken })`: caching around any token source, and the local-dev
// sign-in (`POST /v1/dev/token`, served only when the worker runs with DEV_MODE=true).

import { ApiError, httpBase, requestJson, type Role } from './api.js'
import type { GetToken, TokenRequest, TokenResult } from './connect.js'
import { PrepareError } from './token-socket.js'

/** Body of `POST /v1/dev/token` (all but `room` optional). */
export interface DevTokenRequest {
  room: string
  name?: string
  color?: string
  role?: Role
  /** User id; the server picks one when absent. */
  sub?: string
}

/** Answer of `POST /v1/dev/token`; `expires_at` in unix seconds. */
export interface DevToken {
  token: string
  expires_at: number
  room?: string
  role?: Role
  sub?: string
}

/**
 * Asks a development server for a room token. Returns null when the server has no dev sign-in
 * (404: DEV_MODE is off, or the server predates identity), so callers can connect without one.
 */
export async function fetchDevToken (baseUrl: string, body: DevTokenRequest, fetchFn: typeof fetch = (i, o) => globalThis.fetch(i, o)): Promise<DevToken | null> {
  try {
    return await requestJson<DevToken>(fetchFn, 'POST', `${httpBase(baseUrl)}/v1/dev/token`, { body })
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null
    throw err
  }
}

/** Options of `cacheTokens`. */
export interface CacheOptions {
  /** Fetch a new token once the cached one has less than this many seconds left (default 60). */
  refreshBeforeSeconds?: number
  /** Clock in unix seconds (for tests). */
  now?: () => number
}

/**
 * Wraps a token source so reconnects (and a call's TURN refreshes, reason `refresh`) reuse a
 * token that is still fresh. A new token is fetched when there is none, when it is about to
 * expire, and always after the server said it expired (close 4401) or an attempt never opened
 * (the token may have been refused).
 */
export function cacheTokens (source: GetToken, options: CacheOptions = {}): GetToken {
  const margin = options.refreshBeforeSeconds ?? 60
  const now = options.now ?? (() => Date.now() / 1000)
  let cached: { token: string | null, expiresAt: number | null } | null = null
  return async (request: TokenRequest): Promise<TokenResult> => {
    const reuse = cached !== null &&
      (request.reason === 'initial' || request.reason === 'reconnect' || request.reason === 'refresh') &&
      (cached.expiresAt === null ? cached.token === null : cached.expiresAt - margin > now())
    if (reuse && cached !== null) return cached
    const result = await source(request)
    cached = result === null || typeof result === 'string'
      ? { token: result, expiresAt: null }
      : { token: result.token, expiresAt: result.expiresAt ?? null }
    // A token without a known expiry is never reused; "no token" (null) is, until refused.
    return cached
  }
}

/**
 * The local-dev `getToken`: signs in through `POST /v1/dev/token` with a display name, colour and
 * role. Connects without a token when the server answers 404; a 401/403 stops reconnecting.
 */
export function devTokenProvider (options: { baseUrl: string, name?: string, color?: string, role?: Role, sub?: string, fetch?: typeof fetch }): GetToken {
  return cacheTokens(async ({ room }) => {
    let answer: DevToken | null
    try {
      const { name, color, role, sub } = options
      answer = await fetchDevToken(options.baseUrl, { room, name, color, role, sub }, options.fetch)
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        // 4403 (not 4401): a code in 4400-4499 other than 4401 stops the reconnect loop.
        throw new PrepareError(`dev sign-in refused: ${err.message}`, 4403, { cause: err })
      }
      throw err
    }
    return answer === null ? null : { token: answer.token, expiresAt: answer.expires_at }
  })
}
