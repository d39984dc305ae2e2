// The demo's development sign-in (POST /v1/dev/token), shared by the room connection and the
// history panel's HTTP calls: one room token that covers the board and its branches.
//
// Branches the demo makes are named `<board>~<name>` (and `<board>~<a>~<b>` for a branch of a
// branch), so the token asks for the pattern `<board>*`: it admits the board, every branch of
// it, and (a prefix pattern being a prefix) any other room whose name starts the same way. The
// server lets a room token fork only into a name it covers and merge only into a parent it
// covers, which this pattern does from the board and from any of its branches.

import { TandemxApi, fetchDevToken, type DevToken, type GetToken, type Role } from '../../src/index.js'
import type { Identity } from './identity.js'

/** Separates a board's name from a branch's own part. */
export const BRANCH_SEPARATOR = '~'

/** The board a room belongs to: the room itself, or for a branch the part before the first `~`. */
export function boardOf (room: string): string {
  const i = room.indexOf(BRANCH_SEPARATOR)
  return i > 0 ? room.slice(0, i) : room
}

/** The room pattern the demo's token asks for: the board and all its branches. */
export function tokenPattern (room: string): string {
  return `${boardOf(room)}*`
}

/** Longest wait for the development sign-in to answer. */
const MINT_TIMEOUT_MS = 15_000

/** The project of the development sign-in, when the answer does not name one. */
const DEV_PROJECT = 'prj_dev'

interface Held {
  token: string
  expiresAt: number
  role: Role | null
  project: string
  sub: string | null
}

/** A signed-in session of one page. */
export interface Session {
  /** The role the server granted, once a token was minted. */
  readonly role: Role | null
  /** The user id tokens carry (the author of this page's changes is `user:<sub>`). */
  readonly sub: string
  /** The pattern tokens are minted for. */
  readonly pattern: string
  /** Whether the server has a development sign-in: null until asked. */
  readonly signedIn: boolean | null
  /** For `connect({ getToken })`. */
  readonly getToken: GetToken
  /** The HTTP API, authorized with the session's token (renewed when it expires or is refused). */
  readonly api: TandemxApi
  /** The project of the token; throws when the server has no development sign-in. */
  project (): Promise<string>
}

const slug = (name: string): string => name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 24) || 'user'

/**
 * The user id of `name` in this tab: made once and kept in sessionStorage, so opening a branch
 * (or reloading) in the same tab stays the same user, with the same inbox and the same reviews
 * to give. Another tab or browser is another user.
 */
function tabSub (name: string): string {
  const key = `tandemx-demo-sub:${slug(name)}`
  try {
    const kept = sessionStorage.getItem(key)
    if (kept !== null && kept.startsWith(`dev-${slug(name)}-`)) return kept
  } catch {
    // storage unavailable: a new id for this page only
  }
  const sub = `dev-${slug(name)}-${Array.from(crypto.getRandomValues(new Uint8Array(3)), (b) => b.toString(16).padStart(2, '0')).join('')}`
  try {
    sessionStorage.setItem(key, sub)
  } catch {}
  return sub
}

/**
 * Signs `me` in for `room` on `server`. `onToken` runs after every new token (the role may have
 * changed). One user id for the tab, so every change made from it has the same author.
 */
export function createSession (server: string, room: string, me: Identity, onToken: () => void = () => {}): Session {
  const pattern = tokenPattern(room)
  const sub = tabSub(me.name)
  // undefined: never asked; null: the server has no development sign-in (404).
  let held: Held | null | undefined
  let pending: Promise<Held | null> | null = null

  const mint = async (): Promise<Held | null> => {
    // Connection attempts and API calls share one request: it must not hang for good.
    const answer = await fetchDevToken(server, { room: pattern, name: me.name, color: me.color, role: me.role, sub },
      (input, init) => globalThis.fetch(input, { ...init, signal: AbortSignal.timeout(MINT_TIMEOUT_MS) }))
    held = answer === null
      ? null
      : {
          token: answer.token,
          expiresAt: answer.expires_at,
          role: answer.role ?? me.role,
          project: (answer as DevToken & { project?: string }).project ?? DEV_PROJECT,
          sub: answer.sub ?? sub
        }
    onToken()
    return held
  }

  /** The token to use: the held one while it has a minute left, unless `renew`. */
  const current = async (renew: boolean): Promise<Held | null> => {
    const fresh = held !== undefined && (held === null || held.expiresAt - 60 > Date.now() / 1000)
    if (!renew && fresh) return held ?? null
    if (pending === null) pending = mint().finally(() => { pending = null })
    return await pending
  }

  const getToken: GetToken = async ({ reason }) => {
    const t = await current(reason === 'expired' || reason === 'rejected')
    return t === null ? null : { token: t.token, expiresAt: t.expiresAt }
  }

  // Every API call carries the current token; a 401 (expired, or revoked) renews it once.
  const authorized: typeof fetch = async (input, init = {}) => {
    const send = async (renew: boolean): Promise<Response> => {
      const t = await current(renew)
      const headers = new Headers(init.headers)
      if (t !== null) headers.set('authorization', `Bearer ${t.token}`)
      return await globalThis.fetch(input, { ...init, headers })
    }
    const res = await send(false)
    if (res.status !== 401 || held === null) return res
    await res.arrayBuffer().catch(() => {})
    return await send(true)
  }

  return {
    get role () { return held?.role ?? null },
    get signedIn () { return held === undefined ? null : held !== null },
    get sub () { return held?.sub ?? sub },
    pattern,
    getToken,
    api: new TandemxApi({ baseUrl: server, fetch: authorized }),
    async project () {
      const t = await current(false)
      if (t === null) {
        throw new Error('History needs a room token, and this server has no development sign-in (POST /v1/dev/token answered 404).')
      }
      return t.project
    }
  }
}
