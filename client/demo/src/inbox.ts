// The inbox: a topbar badge with the caller's unread count and a dropdown of their newest
// notifications (mentions, replies, reviews), kept current by the SDK's `subscribeInbox` (on
// the room's conversation events, and a poll for what happens elsewhere). A click opens what a
// notification is about and marks it read; "Mark all read" clears the badge.

import type { Live, Notification } from '../../src/index.js'
import type { Talk } from './talk.js'
import { describeError, escapeHtml, statusOf, when } from './ui.js'

type InboxValue = { unread: number, notifications: Notification[] }

/** What the dropdown needs from the board page. */
export interface InboxOptions {
  /** The topbar button (`#inbox-toggle`), its count (`#inbox-count`) and the menu (`#inbox-menu`). */
  button: HTMLButtonElement
  count: HTMLElement
  menu: HTMLElement
  talk: Talk
  /** Opens what `n` is about. */
  openNotification: (n: Notification) => void
}

/** The dropdown, for the board page and for scripts. */
export interface InboxMenu {
  readonly unread: number
  readonly isOpen: boolean
  open (): void
  close (): void
  start (live: Live<InboxValue>): void
  /** Shows an error in the panel (one that happened outside it, such as a failed sign-in). */
  showError (what: string, err: unknown): void
  refresh (): Promise<void>
  notifications (): Notification[]
}

const KIND: Record<Notification['kind'], string> = {
  mention: 'mentioned you',
  reply: 'replied',
  thread: 'started a thread',
  review: 'review'
}

export function mountInbox (opts: InboxOptions): InboxMenu {
  const { button, count, menu, talk } = opts
  const $ = <T extends HTMLElement>(sel: string): T => {
    const el = menu.querySelector<T>(sel)
    if (el === null) throw new Error(`missing ${sel}`)
    return el
  }
  const list = $('#inbox-list')
  const errorBox = $('#inbox-error')
  const readAll = $<HTMLButtonElement>('#inbox-read-all')
  let live: Live<InboxValue> | null = null

  /** Whether the error shown is a failed load (which the next good load takes back). */
  let loadError = false
  const showError = (what: string, err: unknown, load = false): void => {
    loadError = load
    errorBox.hidden = false
    errorBox.dataset.status = String(statusOf(err))
    errorBox.textContent = `${what}: ${describeError(err)}`
  }
  const clearError = (): void => {
    errorBox.hidden = true
    errorBox.textContent = ''
    delete errorBox.dataset.status
  }

  const where = (n: Notification): string => {
    if (n.document === null) return ''
    return n.document === talk.room ? 'on this board' : `on ${n.document}`
  }
  const line = (n: Notification): string => {
    const actor = escapeHtml(talk.people.nameOf(n.actor))
    if (n.kind === 'review') return `<strong>${actor}</strong> · review ${escapeHtml(where(n))}`
    return `<strong>${actor}</strong> ${escapeHtml(KIND[n.kind] ?? n.kind)} ${escapeHtml(where(n))}`
  }

  /** An excerpt with `@<id>` of members the room has named written as `@<name>`. */
  const named = (excerpt: string): string => excerpt.replace(/@([A-Za-z0-9._~:-]+)/g, (all, sub: string) => {
    const name = talk.people.nameOf(sub)
    return name === sub ? all : `@${name}`
  })

  const render = (): void => {
    const value = live?.current ?? { unread: 0, notifications: [] }
    count.textContent = String(value.unread)
    count.hidden = value.unread === 0
    button.dataset.unread = String(value.unread)
    button.title = value.unread === 0 ? 'Notifications: none unread' : `Notifications: ${value.unread} unread`
    readAll.disabled = value.unread === 0
    list.innerHTML = value.notifications.length === 0
      ? '<li class="empty">Nothing yet. Mentions of you, replies to your threads and reviews show up here.</li>'
      : value.notifications.map((n) => `
        <li class="notification${n.read_at === null ? ' unread' : ''}" data-id="${n.id}" data-kind="${escapeHtml(n.kind)}" tabindex="0" role="button">
          <div class="n-line">${line(n)}</div>
          ${n.excerpt !== null && n.excerpt !== '' ? `<div class="n-excerpt">${escapeHtml(named(n.excerpt))}</div>` : ''}
          <div class="n-time">${escapeHtml(when(n.created_at))}</div>
        </li>`).join('')
  }

  const markRead = async (ids?: number[]): Promise<void> => {
    clearError()
    try {
      await talk.api.inbox.markRead(await talk.project(), ids)
    } catch (err) {
      showError('Marking read failed', err)
    }
    await live?.refresh()
  }

  const activate = (li: HTMLElement): void => {
    const n = live?.current.notifications.find((x) => x.id === Number(li.dataset.id))
    if (n === undefined) return
    menuApi.close()
    if (n.read_at === null) void markRead([n.id])
    opts.openNotification(n)
  }
  list.addEventListener('click', (ev) => {
    const li = (ev.target as Element).closest<HTMLElement>('li.notification')
    if (li !== null) activate(li)
  })
  list.addEventListener('keydown', (ev) => {
    const li = (ev.target as Element).closest<HTMLElement>('li.notification')
    if (li !== null && (ev.key === 'Enter' || ev.key === ' ')) { ev.preventDefault(); activate(li) }
  })
  readAll.addEventListener('click', () => { void markRead() })
  talk.people.onChange(() => render())

  const menuApi: InboxMenu = {
    get unread () { return live?.current.unread ?? 0 },
    get isOpen () { return !menu.hidden },
    open () {
      menu.hidden = false
      button.setAttribute('aria-expanded', 'true')
      button.classList.add('active')
      void live?.refresh()
    },
    close () {
      menu.hidden = true
      button.setAttribute('aria-expanded', 'false')
      button.classList.remove('active')
    },
    start (l) {
      live = l
      l.on(() => { if (loadError) clearError(); render() })
      l.onError((err) => showError('Loading the inbox failed', err, true))
      render()
    },
    showError,
    refresh: async () => { await live?.refresh() },
    notifications: () => [...(live?.current.notifications ?? [])]
  }
  button.addEventListener('click', (ev) => {
    ev.stopPropagation()
    if (menu.hidden) menuApi.open()
    else menuApi.close()
  })
  document.addEventListener('click', (ev) => {
    if (!menu.hidden && !menu.contains(ev.target as Node) && ev.target !== button) menuApi.close()
  })
  document.addEventListener('keydown', (ev) => { if (ev.key === 'Escape' && !menu.hidden) menuApi.close() })
  render()
  return menuApi
}
