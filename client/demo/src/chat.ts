// The room's chat: the newest messages, kept current by the SDK's `subscribeChat` over the
// room connection (made with `events: true`), a box that sends with Enter (Shift+Enter for a
// new line, `@` to mention), and "typing…" from awareness. Viewers read it; the box is disabled
// with the reason. Every API error is shown in the panel.

import { textBody, type ChatMessage, type Live } from '../../src/index.js'
import { attachMentions } from './mentions.js'
import { typingLine, type Talk } from './talk.js'
import { bodyHtml, describeError, escapeHtml, setHtml, statusOf, syncList, when } from './ui.js'

/** What the panel needs from the board page. */
export interface ChatOptions {
  /** The panel (`#chat` of index.html). */
  host: HTMLElement
  talk: Talk
  /** Runs after the panel opened or closed, and when unread messages came or went. */
  onToggle?: () => void
}

/** The panel, for the board page and for scripts. */
export interface ChatPanel {
  readonly isOpen: boolean
  /** Messages from others that arrived while the panel was closed. */
  readonly unread: number
  open (): void
  close (): void
  toggle (): void
  start (live: Live<ChatMessage[]>): void
  /** Shows an error in the panel (one that happened outside it, such as a failed sign-in). */
  showError (what: string, err: unknown): void
  applyRole (): void
  messages (): ChatMessage[]
}

export function mountChat (opts: ChatOptions): ChatPanel {
  const { host, talk } = opts
  const $ = <T extends HTMLElement>(sel: string): T => {
    const el = host.querySelector<T>(sel)
    if (el === null) throw new Error(`missing ${sel}`)
    return el
  }
  const list = $('#chat-list')
  const empty = $('#chat-empty')
  const typingEl = $('#chat-typing')
  const form = $<HTMLFormElement>('#chat-form')
  const box = $<HTMLTextAreaElement>('#chat-input')
  const send = $<HTMLButtonElement>('#chat-send')
  const errorBox = $('#chat-error')
  const errorText = $('#chat-error-text')
  const readOnlyNote = $('#chat-readonly')
  const scroller = $('#chat-scroll')

  let live: Live<ChatMessage[]> | null = null
  let seen = 0
  let unread = 0
  let primed = false

  const showError = (what: string, err: unknown): void => {
    errorBox.hidden = false
    errorBox.dataset.status = String(statusOf(err))
    errorText.textContent = `${what}: ${describeError(err)}`
  }
  const clearError = (): void => {
    errorBox.hidden = true
    errorText.textContent = ''
    delete errorBox.dataset.status
  }
  $('#chat-error-dismiss').addEventListener('click', clearError)

  const canChat = (): boolean => talk.role() !== 'viewer'
  const who = (sub: string): string => (sub === talk.me() ? 'you' : talk.people.nameOf(sub))

  const render = (): void => {
    const messages = live?.current ?? []
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40
    syncList(list, messages, (m) => `m${m.id}`, (m) => {
      const li = document.createElement('li')
      li.className = 'chat-msg'
      li.dataset.message = String(m.id)
      return li
    }, (li, m) => {
      li.classList.toggle('own', m.author === talk.me())
      setHtml(li, `<div class="chat-head"><span class="author" title="${escapeHtml(m.author)}">${escapeHtml(who(m.author))}</span> <time>${escapeHtml(when(m.created_at))}</time></div>` +
        `<div class="chat-body">${bodyHtml(m.body, talk.people.nameOf)}</div>`)
    })
    empty.hidden = messages.length > 0
    empty.textContent = live === null ? 'Loading the chat…' : 'No messages yet. Say hello.'
    if (atBottom || messages.length <= 1) scroller.scrollTop = scroller.scrollHeight
    // Count what others said while the panel was closed (what was said before the page opened,
    // the first load, is not new).
    const newest = messages.length > 0 ? messages[messages.length - 1].id : 0
    if (!primed && live !== null) {
      primed = true
      seen = newest
    }
    if (host.hidden) {
      const fresh = messages.filter((m) => m.id > seen && m.author !== talk.me()).length
      if (fresh !== unread) { unread = fresh; opts.onToggle?.() }
    } else {
      seen = newest
      if (unread !== 0) { unread = 0; opts.onToggle?.() }
    }
  }

  const showTyping = (): void => { typingEl.textContent = typingLine(talk.typing.who({ in: 'chat' })) }
  talk.typing.onChange(showTyping)
  talk.people.onChange(render)

  attachMentions(box, talk.people, talk.me)
  box.addEventListener('input', () => {
    if (box.value !== '') talk.typing.mark({ in: 'chat' })
    else talk.typing.clear()
  })
  box.addEventListener('blur', () => talk.typing.clear())
  box.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault()
      form.requestSubmit()
    }
  })
  form.addEventListener('submit', (ev) => {
    ev.preventDefault()
    const text = box.value.trim()
    if (text === '' || !canChat()) return
    clearError()
    send.disabled = true
    host.setAttribute('aria-busy', 'true')
    void (async () => {
      try {
        await talk.api.chat.post(await talk.project(), talk.room, textBody(text, talk.people.ids()))
        box.value = ''
        talk.typing.clear()
        await live?.refresh()
      } catch (err) {
        showError('Sending failed', err)
      } finally {
        send.disabled = !canChat()
        host.setAttribute('aria-busy', 'false')
      }
    })()
  })

  const applyRole = (): void => {
    const ok = canChat()
    box.disabled = !ok
    send.disabled = !ok
    const reason = `Chatting needs a commenter role or more; you are signed in as a ${talk.role()}.`
    box.placeholder = ok ? 'Message the room (Enter to send)' : `You are signed in as a ${talk.role()}: read only`
    box.title = ok ? '' : reason
    send.title = ok ? '' : reason
    readOnlyNote.hidden = ok
    readOnlyNote.textContent = ok ? '' : `You are signed in as a ${talk.role()}: you can read the chat, not write in it.`
  }

  const panel: ChatPanel = {
    get isOpen () { return !host.hidden },
    get unread () { return unread },
    open () {
      if (!host.hidden) return
      host.hidden = false
      document.body.classList.add('chat-open')
      render()
      scroller.scrollTop = scroller.scrollHeight
      opts.onToggle?.()
    },
    close () {
      if (host.hidden) return
      host.hidden = true
      document.body.classList.remove('chat-open')
      talk.typing.clear()
      opts.onToggle?.()
    },
    toggle () { if (host.hidden) panel.open(); else panel.close() },
    start (l) {
      live = l
      l.on(render)
      l.onError((err) => showError('Loading the chat failed', err))
    },
    showError,
    applyRole,
    messages: () => [...(live?.current ?? [])]
  }
  $('#chat-close').addEventListener('click', () => panel.close())
  host.setAttribute('aria-busy', 'false')
  applyRole()
  showTyping()
  render()
  return panel
}
