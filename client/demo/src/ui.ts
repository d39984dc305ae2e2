// Small helpers the board's panels share: escaping, times, API errors in words, comment bodies
// as HTML, and keyed lists that keep their elements (and a half-typed reply) across re-renders.

import { ApiError, type Body } from '../../src/index.js'

export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c] ?? c))

const two = (n: number): string => String(n).padStart(2, '0')

/** A time of day (with the date when not today); `precise` adds milliseconds. */
export function when (ms: number, precise = false): string {
  const d = new Date(ms)
  const time = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}${precise ? `.${String(d.getMilliseconds()).padStart(3, '0')}` : ''}`
  return d.toDateString() === new Date().toDateString() ? time : `${d.toLocaleDateString()} ${time}`
}

/** An error in words: an API problem's title, detail, status and error word. */
export function describeError (err: unknown): string {
  if (err instanceof ApiError) {
    const p = err.problem
    if (p === null) return err.message
    const detail = p.detail !== undefined && p.detail !== '' && p.detail !== p.title ? `: ${p.detail}` : ''
    return `${p.title}${detail} (${err.status}${p.error !== undefined ? ` ${p.error}` : ''})`
  }
  return err instanceof Error ? err.message : String(err)
}

/** The HTTP status of an error, 0 when it is not an answer. */
export const statusOf = (err: unknown): number => (err instanceof ApiError ? err.status : 0)

/**
 * A body as HTML: paragraphs, marks, mentions (named by `nameOf`) and http(s) links. Everything
 * is escaped; nothing of the body is taken as markup.
 */
export function bodyHtml (body: Body, nameOf: (sub: string) => string): string {
  return body.content.map((p) => `<p>${p.children.map((c) => {
    if (c.type === 'mention') return `<span class="mention" data-user="${escapeHtml(c.user)}" title="${escapeHtml(c.user)}">@${escapeHtml(nameOf(c.user))}</span>`
    if (c.type === 'link') {
      const text = escapeHtml(c.text ?? c.url)
      return /^https?:\/\//i.test(c.url) ? `<a href="${escapeHtml(c.url)}" target="_blank" rel="noopener noreferrer">${text}</a>` : text
    }
    let html = escapeHtml(c.text)
    if (c.code === true) html = `<code>${html}</code>`
    if (c.bold === true) html = `<strong>${html}</strong>`
    if (c.italic === true) html = `<em>${html}</em>`
    return html
  }).join('')}</p>`).join('')
}

/**
 * Makes `parent`'s children the elements of `items`, in order: an item's element is made once
 * (`create`), then `update`d; elements of items no longer there are removed. Elements already in
 * place are not moved, so focus and typed text inside them survive.
 */
export function syncList<T> (parent: HTMLElement, items: T[], key: (item: T) => string, create: (item: T) => HTMLElement, update: (el: HTMLElement, item: T) => void): void {
  const byKey = new Map<string, HTMLElement>()
  for (const el of Array.from(parent.children) as HTMLElement[]) {
    if (el.dataset.key !== undefined) byKey.set(el.dataset.key, el)
    else el.remove()
  }
  const wanted = new Set<string>()
  items.forEach((item, i) => {
    const k = key(item)
    wanted.add(k)
    let el = byKey.get(k)
    if (el === undefined) {
      el = create(item)
      el.dataset.key = k
      byKey.set(k, el)
    }
    update(el, item)
    if (parent.children[i] !== el) parent.insertBefore(el, parent.children[i] ?? null)
  })
  for (const [k, el] of byKey) if (!wanted.has(k)) el.remove()
}

/** Sets `el.innerHTML` only when `html` differs from what was set last (keeps the DOM still). */
export function setHtml (el: HTMLElement, html: string): void {
  if (shownHtml.get(el) === html) return
  el.innerHTML = html
  shownHtml.set(el, html)
}
const shownHtml = new WeakMap<HTMLElement, string>()
