// Mention autocomplete for the comment and chat boxes: typing `@` offers the project's members
// (People, from `GET /v1/projects/{p}/members`), filtered by what follows; picking one writes
// `@<id> `, which `textBody(text, people.ids())` turns into a mention when the text is sent.

import type { Member } from '../../src/index.js'
import type { People } from './talk.js'
import { describeError, escapeHtml } from './ui.js'

/** Most members offered at once. */
const MAX_OPTIONS = 8
/** Members are loaded again when the list is older than this as a menu opens. */
const MEMBERS_MAX_AGE_MS = 1000
/** The `@word` being typed just before the caret. */
const AT_WORD = /(^|\s)@([A-Za-z0-9._~:-]*)$/

/** The box showing the menu now: its way to pick, close and redraw. */
interface Owner { box: HTMLTextAreaElement, pick (sub: string): void, close (): void, render (): void }

// One menu for the page (one box has the focus at a time), made on first use.
let shared: HTMLUListElement | null = null
let owner: Owner | null = null
const hooked = new WeakSet<People>()

function theMenu (): HTMLUListElement {
  if (shared !== null) return shared
  const menu = document.createElement('ul')
  menu.className = 'mention-menu'
  menu.setAttribute('role', 'listbox')
  menu.hidden = true
  document.body.appendChild(menu)
  // mousedown, not click: the box keeps its focus (and caret).
  menu.addEventListener('mousedown', (ev) => {
    ev.preventDefault()
    const li = (ev.target as Element).closest<HTMLElement>('[data-sub]')
    if (li?.dataset.sub !== undefined) owner?.pick(li.dataset.sub)
  })
  shared = menu
  return menu
}

/**
 * Adds mention autocomplete to `box`. `me` is left out of the offers. While the menu is open,
 * Enter and Tab pick and Escape closes (the box's own key handlers do not see those keys).
 */
export function attachMentions (box: HTMLTextAreaElement, people: People, me: () => string): void {
  const menu = theMenu()
  let options: Member[] = []
  let active = 0
  let query: { text: string, start: number } | null = null
  /** Why the members could not be loaded, shown in the menu until a load succeeds. */
  let loadError: string | null = null

  const close = (): void => {
    query = null
    options = []
    delete box.dataset.mentions
    if (owner?.box !== box) return
    menu.hidden = true
    owner = null
  }

  const place = (): void => {
    const r = box.getBoundingClientRect()
    menu.style.left = `${Math.round(r.left)}px`
    menu.style.minWidth = `${Math.round(Math.min(r.width, 320))}px`
    const below = window.innerHeight - r.bottom
    const h = menu.offsetHeight
    menu.style.top = below >= h + 8 || r.top < h + 8 ? `${Math.round(r.bottom + 4)}px` : `${Math.round(r.top - h - 4)}px`
  }

  const matches = (q: string): Member[] => {
    const needle = q.toLowerCase()
    const scored = people.list()
      .filter((m) => m.sub !== me())
      .map((m) => {
        const name = people.nameOf(m.sub).toLowerCase()
        const id = m.sub.toLowerCase()
        const at = Math.min(...[id.indexOf(needle), name.indexOf(needle)].filter((i) => i >= 0).concat([Infinity]))
        return { m, score: at === Infinity ? -1 : (people.present(m.sub) ? 0 : 100) + (at === 0 ? 0 : 10) + at }
      })
      .filter((x) => x.score >= 0)
      .sort((a, b) => a.score - b.score || (a.m.sub < b.m.sub ? -1 : 1))
    return scored.slice(0, MAX_OPTIONS).map((x) => x.m)
  }

  const render = (): void => {
    if (query === null) return
    if (owner !== null && owner.box !== box) owner.close()
    owner = self
    options = matches(query.text)
    if (options.length === 0) {
      const why = loadError !== null
        ? `Loading the members failed: ${escapeHtml(loadError)}`
        : people.list().length === 0 ? 'Loading members…' : `No member matches “${escapeHtml(query.text)}”`
      menu.innerHTML = `<li class="mention-none">${why}</li>`
    } else {
      active = Math.min(active, options.length - 1)
      menu.innerHTML = options.map((m, i) => {
        const name = people.nameOf(m.sub)
        return `<li class="mention-option${i === active ? ' active' : ''}" role="option" aria-selected="${i === active}" data-sub="${escapeHtml(m.sub)}">` +
          `<strong>${escapeHtml(name)}</strong>${name !== m.sub ? ` <span class="muted">${escapeHtml(m.sub)}</span>` : ''}` +
          ` <span class="mention-role">${escapeHtml(m.role)}</span>${people.present(m.sub) ? ' <span class="mention-here">here</span>' : ''}</li>`
      }).join('')
    }
    menu.hidden = false
    box.dataset.mentions = 'open'
    place()
  }

  const look = (): void => {
    if (box.disabled) { close(); return }
    const caret = box.selectionStart ?? box.value.length
    const m = AT_WORD.exec(box.value.slice(0, caret))
    if (m === null) { close(); return }
    const opening = query === null
    query = { text: m[2], start: caret - m[2].length - 1 }
    if (opening) active = 0
    render()
    // New members sign in all the time (every development sign-in is one): look again.
    if (opening) {
      void people.load(MEMBERS_MAX_AGE_MS).then(() => { loadError = null; render() }, (err) => { loadError = describeError(err); render() })
    }
  }

  const pick = (sub: string): void => {
    if (query === null) return
    const caret = box.selectionStart ?? box.value.length
    const insert = `@${sub} `
    box.value = box.value.slice(0, query.start) + insert + box.value.slice(caret)
    const at = query.start + insert.length
    box.setSelectionRange(at, at)
    close()
    box.focus()
    box.dispatchEvent(new Event('input', { bubbles: true }))
  }

  box.addEventListener('input', look)
  box.addEventListener('click', look)
  box.addEventListener('keyup', (ev: KeyboardEvent) => { if (ev.key === 'ArrowLeft' || ev.key === 'ArrowRight' || ev.key === 'Home' || ev.key === 'End') look() })
  box.addEventListener('blur', () => { setTimeout(() => { if (document.activeElement !== box) close() }, 150) })
  // Capture: runs before the box's own Enter-to-send.
  box.addEventListener('keydown', (ev: KeyboardEvent) => {
    if (menu.hidden || query === null || owner?.box !== box) return
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault()
      if (options.length > 0) active = (active + (ev.key === 'ArrowDown' ? 1 : options.length - 1)) % options.length
      render()
    } else if ((ev.key === 'Enter' || ev.key === 'Tab') && options.length > 0) {
      ev.preventDefault()
      ev.stopImmediatePropagation()
      pick(options[active].sub)
    } else if (ev.key === 'Escape') {
      ev.preventDefault()
      ev.stopImmediatePropagation()
      close()
    }
  }, { capture: true })
  const self: Owner = { box, pick, close, render }
  if (!hooked.has(people)) {
    hooked.add(people)
    people.onChange(() => owner?.render())
  }
}
