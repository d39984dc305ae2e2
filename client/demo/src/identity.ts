// Who the local user is in the demo, where the server is, and which room the URL names.

import type { Role } from '../../src/index.js'

/** The local user as the demo knows them. */
export interface Identity {
  name: string
  color: string
  /** The role asked for at the development sign-in. */
  role: Role
}

/** Colours offered on the landing page. */
export const COLORS = ['#e4572e', '#2e6fd8', '#2f9e44', '#9c36b5', '#e8590c', '#0c8599', '#d6336c', '#5f3dc4']

/** Roles offered at the development sign-in. */
export const ROLES: Role[] = ['editor', 'owner', 'commenter', 'viewer']

const KEY = 'tandemx-demo-identity'
const ROOM_NAME = /^[A-Za-z0-9._~:-]{1,128}$/

/** Whether `name` is a valid room name (docs/protocol.md). */
export function validRoom (name: string): boolean {
  return ROOM_NAME.test(name)
}

/** A fresh random room name. */
export function newRoomName (): string {
  const bytes = crypto.getRandomValues(new Uint8Array(5))
  return `board-${Array.from(bytes, (b) => b.toString(36).padStart(2, '0')).join('').slice(0, 8)}`
}

/**
 * The room named by what the user pasted: a link to this app (`...?room=NAME`) or a bare name.
 * Returns null when it names none.
 */
export function roomFromInput (input: string): string | null {
  const text = input.trim()
  if (text === '') return null
  if (/^https?:\/\//.test(text)) {
    try {
      const room = new URL(text).searchParams.get('room')
      return room !== null && validRoom(room) ? room : null
    } catch {
      return null
    }
  }
  return validRoom(text) ? text : null
}

/** The identity saved on this browser, if any. */
export function savedIdentity (): Identity | null {
  try {
    const raw = localStorage.getItem(KEY)
    if (raw === null) return null
    const v = JSON.parse(raw) as Partial<Identity>
    if (typeof v.name !== 'string' || typeof v.color !== 'string' || !ROLES.includes(v.role as Role)) return null
    return { name: v.name, color: v.color, role: v.role as Role }
  } catch {
    return null
  }
}

/** Saves the identity on this browser. */
export function saveIdentity (identity: Identity): void {
  try {
    localStorage.setItem(KEY, JSON.stringify(identity))
  } catch {
    // private mode: keep it for this page only
  }
}

/**
 * The identity for this page: URL parameters `name`, `color`, `role` (for scripted and test
 * sessions) over the saved one. Null when neither names the user.
 */
export function pageIdentity (params: URLSearchParams): Identity | null {
  const saved = savedIdentity()
  const name = params.get('name') ?? saved?.name
  if (name === undefined || name.trim() === '') return null
  const role = params.get('role') ?? saved?.role ?? 'editor'
  return {
    name: name.trim().slice(0, 40),
    color: params.get('color') ?? saved?.color ?? COLORS[0],
    role: ROLES.includes(role as Role) ? role as Role : 'editor'
  }
}

/** The TandemX server: `?server=` or this page's origin (the worker serves the demo). */
export function serverUrl (params: URLSearchParams): string {
  return params.get('server') ?? location.origin
}
