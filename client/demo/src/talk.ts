// What the board's conversation panels share: who the project's members are (for mentions and
// reviewers) and what to call them, and "typing…" over awareness.
//
// Members come from `GET /v1/projects/{p}/members` (readable with the page's room token). Their
// ids are the development sign-in's `dev-<name>-<hex>`; a collaborator in the room says their
// display name in awareness (`user.name`, next to `sub`), so the panels show "Grace" rather than
// the id wherever the room has seen them.

import type { Awareness } from 'y-protocols/awareness'
import type { ConversationRoutes, Member, Role, TandemxApi } from '../../src/index.js'

/** The project's members, as the panels need them. */
export interface People {
  /** Members as last loaded. */
  list (): Member[]
  /** Member ids as last loaded (for `textBody`). */
  ids (): string[]
  /** Loads the members again unless the last load is younger than `maxAgeMs`. */
  load (maxAgeMs?: number): Promise<Member[]>
  /** A display name for a user id: the name they use in the room, else the id. */
  nameOf (sub: string): string
  /** Whether the user is in the room now. */
  present (sub: string): boolean
  /** Calls `fn` after each load, and when a name is learned. */
  onChange (fn: () => void): () => void
}

/** Where someone types: the chat, or a thread's reply box (0: a new thread). */
export type TypingPlace = { in: 'chat' } | { in: 'thread', thread: number }

/** The awareness field: set while typing, null after. */
interface TypingState { in: 'chat' | 'thread', thread?: number, at: number }

/** "Typing…" over awareness: the local user's, and everyone else's. */
export interface Typing {
  /** The local user typed at `place`: said at once, cleared ~3 s after the last keystroke. */
  mark (place: TypingPlace): void
  /** The local user stopped (sent, or left the box). */
  clear (): void
  /** Names of the others typing at `place` now. */
  who (place: TypingPlace): string[]
  /** Calls `fn` when someone starts or stops typing (and once a second while anyone is). */
  onChange (fn: () => void): () => void
}

/** Idle time after which the local "typing" is cleared. */
export const TYPING_IDLE_MS = 3000
/** A remote "typing" older than this is taken as stale (its clear may have been lost). */
const TYPING_STALE_MS = 6000
/** Wait before loading the members again for someone unknown who joined (others may follow). */
const STRANGER_RELOAD_DELAY_MS = 300
/** Least time between two typing broadcasts for the same place. */
const TYPING_RESEND_MS = 1000

/** Everything the conversation panels of one board share. */
export interface Talk {
  readonly api: ConversationRoutes
  readonly room: string
  /** The project of the page's token; throws when the server has no development sign-in. */
  project (): Promise<string>
  /** The local user's id (the author of their comments). */
  me (): string
  /** The role the page acts with now. */
  role (): Role
  readonly people: People
  readonly typing: Typing
}

type State = { user?: { name?: string }, sub?: string, typing?: TypingState | null }

/** The members of `project()`, named through `awareness`. */
export function createPeople (api: TandemxApi, project: () => Promise<string>, awareness: Awareness): People {
  let members: Member[] = []
  let loadedAt = 0
  let pending: Promise<Member[]> | null = null
  const names = new Map<string, string>()
  const listeners = new Set<() => void>()
  const notify = (): void => { for (const fn of [...listeners]) fn() }

  let retry = 0
  /** Ids seen in the room that were not members when first seen (each reloads the list once). */
  const strangers = new Set<string>()
  const learn = (): void => {
    let learned = false
    let stranger = false
    for (const raw of awareness.getStates().values()) {
      const s = raw as State
      if (typeof s.sub !== 'string') continue
      if (typeof s.user?.name === 'string' && names.get(s.sub) !== s.user.name) {
        names.set(s.sub, s.user.name)
        learned = true
      }
      if (loadedAt > 0 && !strangers.has(s.sub) && !members.some((m) => m.sub === s.sub)) {
        strangers.add(s.sub)
        stranger = true
      }
    }
    if (learned) notify()
    // Someone joined who signed in after the members were loaded: load them again (soon, and
    // once for each such id).
    if (stranger && retry === 0) {
      retry = window.setTimeout(() => {
        retry = 0
        people.load().catch(() => {})
      }, STRANGER_RELOAD_DELAY_MS)
    }
  }
  awareness.on('change', learn)

  const people: People = {
    list: () => members,
    ids: () => members.map((m) => m.sub),
    async load (maxAgeMs = 0) {
      if (Date.now() - loadedAt < maxAgeMs && loadedAt > 0) return members
      if (pending === null) {
        pending = (async () => {
          const answer = await api.members.list(await project())
          members = answer.members
          loadedAt = Date.now()
          notify()
          return members
        })().finally(() => { pending = null })
      }
      return await pending
    },
    nameOf: (sub) => names.get(sub) ?? sub,
    present (sub) {
      for (const [id, raw] of awareness.getStates()) {
        if (id !== awareness.clientID && (raw as State).sub === sub) return true
      }
      return false
    },
    onChange (fn) { listeners.add(fn); return () => { listeners.delete(fn) } }
  }
  return people
}

const samePlace = (s: TypingState | null | undefined, p: TypingPlace): boolean =>
  s != null && s.in === p.in && (p.in === 'chat' || s.thread === p.thread)

/** Typing over `awareness` (the field `typing`, see the SDK's README). */
export function createTyping (awareness: Awareness): Typing {
  let idle = 0
  let lastSent: { place: TypingPlace, at: number } | null = null
  const listeners = new Set<() => void>()
  let ticker = 0

  const others = (): Array<{ name: string, typing: TypingState }> => {
    const out: Array<{ name: string, typing: TypingState }> = []
    const now = Date.now()
    for (const [id, raw] of awareness.getStates()) {
      const s = raw as State
      if (id === awareness.clientID || s.typing == null || now - s.typing.at > TYPING_STALE_MS) continue
      out.push({ name: s.user?.name ?? `Guest ${id % 1000}`, typing: s.typing })
    }
    return out
  }
  const notify = (): void => {
    for (const fn of [...listeners]) fn()
    // While anyone types, look again each second: a lost clear goes stale.
    if (others().length > 0 && ticker === 0) {
      ticker = window.setInterval(() => {
        for (const fn of [...listeners]) fn()
        if (others().length === 0) { clearInterval(ticker); ticker = 0 }
      }, 1000)
    }
  }
  awareness.on('change', notify)

  const clear = (): void => {
    clearTimeout(idle)
    idle = 0
    lastSent = null
    if ((awareness.getLocalState() as State | null)?.typing != null) awareness.setLocalStateField('typing', null)
  }

  return {
    mark (place) {
      const now = Date.now()
      const same = lastSent !== null && lastSent.place.in === place.in &&
        (place.in === 'chat' || (lastSent.place.in === 'thread' && lastSent.place.thread === place.thread))
      if (!same || lastSent === null || now - lastSent.at >= TYPING_RESEND_MS) {
        awareness.setLocalStateField('typing', { ...place, at: now })
        lastSent = { place, at: now }
      }
      clearTimeout(idle)
      idle = window.setTimeout(clear, TYPING_IDLE_MS)
    },
    clear,
    who: (place) => others().filter((o) => samePlace(o.typing, place)).map((o) => o.name),
    onChange (fn) { listeners.add(fn); return () => { listeners.delete(fn) } }
  }
}

/** "Grace is typing…", "Grace and Ada are typing…", or '' for nobody. */
export function typingLine (names: string[]): string {
  if (names.length === 0) return ''
  if (names.length === 1) return `${names[0]} is typing…`
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`
  return `${names.length} people are typing…`
}
