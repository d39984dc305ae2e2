// Comment threads on the canvas: the Comment tool drops a pin on the background (a point
// anchor) or on a node (a point anchor on `nodes/<id>`, so the pin follows the node and is
// orphaned once the node is deleted); pins are drawn over the canvas with their comment count;
// the panel lists the threads (open or resolved), each with its comments, reactions, a reply
// box, edit and delete of one's own comments, and resolve / reopen.
//
// Threads are kept current by the SDK's `subscribeThreads` over the room connection (made with
// `events: true`): another browser's comment arrives within a moment. Every API error is shown
// in the panel.

import {
  bodyText,
  pointAnchor,
  textBody,
  type Anchor,
  type Comment,
  type Live,
  type Role,
  type Thread
} from '../../src/index.js'
import type { CanvasView } from './canvas.js'
import { attachMentions } from './mentions.js'
import { NODE_W, type Board } from './model.js'
import { typingLine, type Talk } from './talk.js'
import { bodyHtml, describeError, escapeHtml, setHtml, statusOf, syncList, when } from './ui.js'

/** The reactions offered on each comment. */
export const REACTIONS = ['👍', '🎉', '❤️', '👀']

/** What the panel needs from the board page. */
export interface ThreadsOptions {
  /** The panel (`#threads` of index.html). */
  host: HTMLElement
  /** The layer over the canvas the pins are drawn in (`#pins`). */
  pins: HTMLElement
  /** The Comment tool's button. */
  tool: HTMLButtonElement
  canvas: CanvasView
  board: Board
  talk: Talk
  /** Whether the room's document has arrived (before that, every node looks deleted). */
  synced: () => boolean
  /** Runs after the panel opened or closed. */
  onToggle?: () => void
}

/** The panel, for the board page and for scripts. */
export interface ThreadsPanel {
  readonly isOpen: boolean
  open (): void
  close (): void
  toggle (): void
  /** Starts the live list (once the project is known). */
  start (live: Live<Map<number, Thread>>): void
  /** Opens the panel on a thread (and shows its pin). */
  openThread (id: number): void
  /** Turns the Comment tool on or off. */
  setTool (on: boolean): void
  /** Applies the current role (after a new token). */
  applyRole (): void
  /** Shows an error in the panel (one that happened outside it, such as a failed sign-in). */
  showError (what: string, err: unknown): void
  /** Threads as last loaded, for scripts. */
  threads (): Thread[]
  /** Whether a thread counts as orphaned here, for scripts. */
  orphaned (id: number): boolean
}

type Filter = 'open' | 'resolved'
interface Draft { at: { x: number, y: number }, node: string | null }

const EDITING: Role[] = ['editor', 'owner']

export function mountThreads (opts: ThreadsOptions): ThreadsPanel {
  const { host, pins, tool, canvas, board, talk } = opts
  const $ = <T extends HTMLElement>(sel: string): T => {
    const el = host.querySelector<T>(sel)
    if (el === null) throw new Error(`missing ${sel}`)
    return el
  }
  const list = $('#thread-list')
  const empty = $('#thread-empty')
  const errorBox = $('#threads-error')
  const errorText = $('#threads-error-text')
  const readOnlyNote = $('#threads-readonly')
  const draftForm = $<HTMLFormElement>('#thread-new')
  const draftTarget = $('#thread-new-target')
  const draftText = $<HTMLTextAreaElement>('#thread-new-text')
  const draftPost = $<HTMLButtonElement>('#thread-new-post')
  const counts = { open: $('#threads-open-count'), resolved: $('#threads-resolved-count') }

  let live: Live<Map<number, Thread>> | null = null
  let filter: Filter = 'open'
  let selected: number | null = null
  let draft: Draft | null = null
  let busy = 0

  // --- roles ---------------------------------------------------------------------------------
  const role = (): Role => talk.role()
  const canComment = (): boolean => role() !== 'viewer'
  const commentReason = (): string => `Commenting needs a commenter role or more; you are signed in as a ${role()}.`
  const canResolve = (t: Thread): boolean => canComment() && (EDITING.includes(role()) || t.created_by === talk.me())
  const canDelete = (c: Comment): boolean => canComment() && (c.author === talk.me() || EDITING.includes(role()))

  // --- errors ----------------------------------------------------------------------------------
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
  $('#threads-error-dismiss').addEventListener('click', clearError)

  /** Runs one action; its error is shown in the panel. */
  const run = async (what: string, fn: (project: string) => Promise<void>): Promise<boolean> => {
    clearError()
    busy++
    host.setAttribute('aria-busy', 'true')
    try {
      await fn(await talk.project())
      await live?.refresh()
      return true
    } catch (err) {
      showError(what, err)
      return false
    } finally {
      if (--busy === 0) host.setAttribute('aria-busy', 'false')
    }
  }

  // --- anchors and pins ------------------------------------------------------------------------
  const nodeOf = (a: Anchor): string | null => (a.type === 'point' && a.node?.map === 'nodes' ? a.node.key : null)
  const labelOf = (id: string): string | null => {
    const n = board.nodes.get(id)
    return n === undefined ? null : String(n.get('label') ?? '')
  }
  /** Orphaned: on a node this board no longer has, or as the server says for other anchors. */
  const isOrphaned = (t: Thread): boolean => {
    const node = nodeOf(t.anchor)
    if (node !== null && opts.synced()) return !board.nodes.has(node)
    return t.position.orphaned
  }
  /** Where a thread's pin is in the world, or null for anchors without one (text, document). */
  const pinPoint = (t: Thread): { x: number, y: number } | null => {
    if (t.anchor.type !== 'point') return null
    const node = nodeOf(t.anchor)
    const n = node === null ? undefined : board.nodes.get(node)
    if (n !== undefined) {
      // Placed where it was clicked on the node (the offset is kept in the metadata).
      const dx = typeof t.metadata.dx === 'number' ? t.metadata.dx : NODE_W - 10
      const dy = typeof t.metadata.dy === 'number' ? t.metadata.dy : 6
      return { x: Number(n.get('x') ?? 0) + dx, y: Number(n.get('y') ?? 0) + dy }
    }
    return { x: t.anchor.x, y: t.anchor.y }
  }
  const anchorText = (t: Thread): string => {
    const a = t.anchor
    if (a.type === 'document') return 'On the board'
    if (a.type === 'text') return `On “${t.position.quote ?? t.quote ?? ''}”`
    const node = nodeOf(a)
    if (node !== null) {
      const label = labelOf(node)
      return label !== null ? `On “${label}”` : 'On a node'
    }
    return `On the canvas at (${Math.round(a.x)}, ${Math.round(a.y)})`
  }
  const liveComments = (t: Thread): Comment[] => t.comments.filter((c) => c.deleted === null)

  const all = (): Thread[] => [...(live?.current.values() ?? [])].sort((a, b) => b.created_at - a.created_at || b.id - a.id)
  const shown = (): Thread[] => all().filter((t) => (filter === 'open') === (t.resolved === null))

  const renderPins = (): void => {
    const v = canvas.view
    const items: Array<{ key: string, t: Thread | null, x: number, y: number }> = []
    for (const t of all()) {
      if (t.resolved !== null && filter !== 'resolved') continue
      const p = pinPoint(t)
      if (p !== null) items.push({ key: `t${t.id}`, t, x: p.x, y: p.y })
    }
    if (draft !== null) items.push({ key: 'draft', t: null, x: draft.at.x, y: draft.at.y })
    syncList(pins, items, (i) => i.key, (i) => {
      const b = document.createElement('button')
      b.type = 'button'
      b.className = 'pin'
      if (i.t !== null) b.dataset.thread = String(i.t.id)
      return b
    }, (el, i) => {
      el.style.transform = `translate(${Math.round(i.x * v.k + v.x)}px, ${Math.round(i.y * v.k + v.y)}px)`
      if (i.t === null) {
        el.classList.add('draft')
        el.textContent = '+'
        el.title = 'New comment'
        return
      }
      const t = i.t
      const orphaned = isOrphaned(t)
      el.classList.toggle('orphaned', orphaned)
      el.classList.toggle('resolved', t.resolved !== null)
      el.classList.toggle('selected', t.id === selected)
      el.dataset.node = nodeOf(t.anchor) ?? ''
      const n = liveComments(t).length
      el.textContent = String(n)
      el.title = `${anchorText(t)}${orphaned ? ' (node deleted)' : ''}: ${n} ${n === 1 ? 'comment' : 'comments'}`
    })
  }

  pins.addEventListener('click', (ev) => {
    const pin = (ev.target as Element).closest<HTMLElement>('.pin')
    if (pin === null) return
    if (pin.dataset.thread !== undefined) panel.openThread(Number(pin.dataset.thread))
    else { panel.open(); draftText.focus() }
  })
  // A wheel over a pin still zooms the canvas.
  pins.addEventListener('wheel', (ev) => {
    ev.preventDefault()
    canvas.svg.dispatchEvent(new WheelEvent('wheel', ev))
  }, { passive: false })

  // --- the list --------------------------------------------------------------------------------
  const reactionsHtml = (c: Comment): string => {
    const mine = (emoji: string): boolean => (c.reactions[emoji] ?? []).includes(talk.me())
    const emojis = [...REACTIONS, ...Object.keys(c.reactions).filter((e) => !REACTIONS.includes(e))]
    return emojis.map((e) => {
      const users = c.reactions[e] ?? []
      const title = users.length === 0 ? `React with ${e}` : users.map((u) => (u === talk.me() ? 'you' : talk.people.nameOf(u))).join(', ')
      return `<button type="button" class="react${users.length > 0 ? ' used' : ''}" data-act="react" data-emoji="${escapeHtml(e)}" aria-pressed="${mine(e)}" title="${escapeHtml(title)}"${canComment() ? '' : ` disabled`}>` +
        `${escapeHtml(e)}<span class="n">${users.length > 0 ? users.length : ''}</span></button>`
    }).join('')
  }

  const who = (sub: string): string => (sub === talk.me() ? 'you' : talk.people.nameOf(sub))

  const commentHtml = (c: Comment): string => {
    if (c.deleted !== null || c.body === null) {
      return `<div class="comment-head"><span class="author">${escapeHtml(who(c.author))}</span> <time>${escapeHtml(when(c.created_at))}</time></div>` +
        `<div class="comment-body tombstone">Comment deleted${c.deleted !== null ? ` by ${escapeHtml(who(c.deleted.by))} at ${escapeHtml(when(c.deleted.at))}` : ''}</div>`
    }
    const own = c.author === talk.me()
    return `<div class="comment-head"><span class="author" title="${escapeHtml(c.author)}">${escapeHtml(who(c.author))}</span> <time>${escapeHtml(when(c.created_at))}</time>` +
      `${c.edited_at !== null ? ` <span class="edited" title="edited at ${escapeHtml(when(c.edited_at))}">(edited)</span>` : ''}</div>` +
      `<div class="comment-body">${bodyHtml(c.body, talk.people.nameOf)}</div>` +
      `<div class="comment-foot"><span class="reactions">${reactionsHtml(c)}</span>` +
      `<span class="comment-actions">${own && canComment() ? '<button type="button" data-act="edit">Edit</button>' : ''}` +
      `${canDelete(c) ? '<button type="button" data-act="delete">Delete</button>' : ''}</span></div>`
  }

  const makeThread = (t: Thread): HTMLElement => {
    const li = document.createElement('li')
    li.className = 'thread'
    li.dataset.thread = String(t.id)
    li.innerHTML = `<div class="thread-head" data-act="select"></div>
      <ol class="comments"></ol>
      <p class="thread-typing" aria-live="polite"></p>
      <form class="reply" autocomplete="off">
        <textarea rows="2" maxlength="8000" placeholder="Reply… (@ to mention, Ctrl+Enter to send)" aria-label="Reply"></textarea>
        <div class="reply-actions">
          <button type="submit" class="primary" data-act="reply">Reply</button>
          <span class="spacer"></span>
          <button type="button" data-act="resolve"></button>
        </div>
      </form>`
    const form = li.querySelector<HTMLFormElement>('form.reply')!
    const box = form.querySelector('textarea')!
    attachMentions(box, talk.people, talk.me)
    box.addEventListener('input', () => { if (box.value !== '') talk.typing.mark({ in: 'thread', thread: t.id }) })
    box.addEventListener('blur', () => talk.typing.clear())
    box.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); form.requestSubmit() }
    })
    form.addEventListener('submit', (ev) => {
      ev.preventDefault()
      const text = box.value
      if (text.trim() === '') { box.focus(); return }
      void run('Replying failed', async (project) => {
        await talk.api.comments.add(project, talk.room, t.id, textBody(text.trim(), talk.people.ids()))
        box.value = ''
        talk.typing.clear()
      })
    })
    return li
  }

  const updateThread = (li: HTMLElement, t: Thread): void => {
    const orphaned = isOrphaned(t)
    li.classList.toggle('selected', t.id === selected)
    li.classList.toggle('orphaned', orphaned)
    li.classList.toggle('resolved', t.resolved !== null)
    const n = liveComments(t).length
    setHtml(li.querySelector<HTMLElement>('.thread-head')!,
      `<span class="thread-anchor">${escapeHtml(anchorText(t))}</span>` +
      (orphaned ? ` <span class="badge orphan" title="The node this thread was on was deleted">${nodeOf(t.anchor) !== null ? 'node deleted' : 'orphaned'}</span>` : '') +
      (t.resolved !== null ? ` <span class="tag tag-resolved" title="by ${escapeHtml(who(t.resolved.by))} at ${escapeHtml(when(t.resolved.at))}">resolved</span>` : '') +
      `<span class="spacer"></span><span class="thread-count" title="comments">${n}</span>`)
    syncList(li.querySelector<HTMLElement>('.comments')!, t.comments, (c) => `c${c.id}`, (c) => {
      const el = document.createElement('li')
      el.className = 'comment'
      el.dataset.comment = String(c.id)
      return el
    }, (el, c) => {
      el.classList.toggle('deleted', c.deleted !== null)
      el.classList.toggle('own', c.author === talk.me())
      if (el.dataset.editing === 'true') return // keep the edit box as the user left it
      setHtml(el, commentHtml(c))
    })
    const box = li.querySelector<HTMLTextAreaElement>('form.reply textarea')!
    const reply = li.querySelector<HTMLButtonElement>('[data-act="reply"]')!
    box.disabled = !canComment()
    reply.disabled = !canComment()
    box.placeholder = canComment() ? 'Reply… (@ to mention, Ctrl+Enter to send)' : `You are signed in as a ${role()}: read only`
    box.title = canComment() ? '' : commentReason()
    reply.title = canComment() ? '' : commentReason()
    const resolve = li.querySelector<HTMLButtonElement>('[data-act="resolve"]')!
    resolve.textContent = t.resolved === null ? 'Resolve' : 'Reopen'
    resolve.disabled = !canResolve(t)
    resolve.title = canResolve(t)
      ? ''
      : canComment()
        ? `Only the thread's author or an editor may ${t.resolved === null ? 'resolve' : 'reopen'} it; you are signed in as a ${role()}.`
        : commentReason()
    li.querySelector<HTMLElement>('.thread-typing')!.textContent = typingLine(talk.typing.who({ in: 'thread', thread: t.id }))
  }

  const render = (): void => {
    const threads = shown()
    const everything = all()
    counts.open.textContent = String(everything.filter((t) => t.resolved === null).length)
    counts.resolved.textContent = String(everything.filter((t) => t.resolved !== null).length)
    syncList(list, threads, (t) => `t${t.id}`, makeThread, updateThread)
    empty.hidden = threads.length > 0
    empty.textContent = live === null
      ? 'Loading comments…'
      : filter === 'open'
        ? 'No open threads. Pick the Comment tool and click the canvas or a node to start one.'
        : 'No resolved threads.'
    host.dataset.filter = filter
    renderPins()
  }

  list.addEventListener('click', (ev) => {
    const target = ev.target as Element
    const li = target.closest<HTMLElement>('li.thread')
    if (li === null) return
    const id = Number(li.dataset.thread)
    const t = live?.current.get(id)
    if (t === undefined) return
    const button = target.closest<HTMLElement>('[data-act]')
    const act = button?.dataset.act
    const commentEl = target.closest<HTMLElement>('li.comment')
    const c = commentEl === null ? undefined : t.comments.find((x) => x.id === Number(commentEl.dataset.comment))
    if (act === 'select' || act === undefined) {
      if (selected !== id) select(id, true)
      return
    }
    if (act === 'resolve') {
      const resolved = t.resolved === null
      void run(resolved ? 'Resolving failed' : 'Reopening failed', async (project) => {
        await talk.api.threads.resolve(project, talk.room, id, resolved)
      })
    } else if (act === 'react' && c !== undefined && button !== null) {
      const emoji = button.dataset.emoji ?? ''
      const on = button.getAttribute('aria-pressed') !== 'true'
      void run(`Reacting with ${emoji} failed`, async (project) => {
        if (on) await talk.api.reactions.add(project, talk.room, id, c.id, emoji)
        else await talk.api.reactions.remove(project, talk.room, id, c.id, emoji)
      })
    } else if (act === 'delete' && c !== undefined) {
      void run('Deleting the comment failed', async (project) => {
        await talk.api.comments.delete(project, talk.room, id, c.id)
      })
    } else if (act === 'edit' && c !== undefined && commentEl !== null && c.body !== null) {
      startEdit(commentEl, t, c)
    }
  })

  const startEdit = (el: HTMLElement, t: Thread, c: Comment): void => {
    el.dataset.editing = 'true'
    el.innerHTML = `<form class="edit" autocomplete="off"><textarea rows="3" maxlength="8000" aria-label="Edit the comment"></textarea>
      <div class="reply-actions"><button type="submit" class="primary">Save</button><button type="button" data-cancel>Cancel</button></div></form>`
    const form = el.querySelector('form')!
    const box = form.querySelector('textarea')!
    box.value = bodyText(c.body)
    attachMentions(box, talk.people, talk.me)
    const done = (): void => {
      delete el.dataset.editing
      setHtml(el, '')
      const current = live?.current.get(t.id)
      if (current !== undefined) updateThread(el.closest<HTMLElement>('li.thread')!, current)
    }
    form.querySelector('[data-cancel]')!.addEventListener('click', (ev) => { ev.stopPropagation(); done() })
    box.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') { ev.preventDefault(); done() }
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); form.requestSubmit() }
    })
    form.addEventListener('submit', (ev) => {
      ev.preventDefault()
      const text = box.value.trim()
      if (text === '') { box.focus(); return }
      void run('Editing the comment failed', async (project) => {
        await talk.api.comments.edit(project, talk.room, t.id, c.id, textBody(text, talk.people.ids()))
        done()
      })
    })
    box.focus()
  }

  const select = (id: number | null, reveal: boolean): void => {
    selected = id
    render()
    if (id === null) return
    const t = live?.current.get(id)
    const li = list.querySelector<HTMLElement>(`li.thread[data-thread="${id}"]`)
    li?.scrollIntoView({ block: 'nearest' })
    if (reveal && t !== undefined) {
      const p = pinPoint(t)
      if (p !== null) {
        const r = canvas.visibleWorld()
        const margin = 40 / canvas.view.k
        if (p.x < r.x + margin || p.x > r.x + r.w - margin || p.y < r.y + margin || p.y > r.y + r.h - margin) canvas.centerOn(p.x, p.y)
      }
    }
  }

  // --- filter ----------------------------------------------------------------------------------
  const setFilter = (f: Filter): void => {
    filter = f
    for (const b of host.querySelectorAll<HTMLButtonElement>('[data-filter]')) b.setAttribute('aria-selected', String(b.dataset.filter === f))
    render()
  }
  for (const b of host.querySelectorAll<HTMLButtonElement>('[data-filter]')) {
    b.addEventListener('click', () => setFilter(b.dataset.filter as Filter))
  }

  // --- new threads -----------------------------------------------------------------------------
  const setTool = (on: boolean): void => {
    const allowed = on && canComment()
    canvas.commentMode = allowed
    tool.setAttribute('aria-pressed', String(allowed))
    tool.classList.toggle('active', allowed)
    document.body.classList.toggle('commenting', allowed)
  }
  tool.addEventListener('click', () => setTool(!canvas.commentMode))
  window.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && canvas.commentMode) setTool(false)
  })

  const cancelDraft = (): void => {
    draft = null
    draftForm.hidden = true
    draftText.value = ''
    renderPins()
  }
  canvas.onCommentClick = (at, node) => {
    setTool(false)
    draft = { at, node }
    draftForm.hidden = false
    const label = node === null ? null : labelOf(node)
    draftTarget.textContent = node === null ? `New comment on the canvas at (${at.x}, ${at.y})` : `New comment on “${label ?? node}”`
    draftForm.dataset.node = node ?? ''
    panel.open()
    renderPins()
    draftText.focus()
  }
  attachMentions(draftText, talk.people, talk.me)
  draftText.addEventListener('input', () => { if (draftText.value !== '') talk.typing.mark({ in: 'thread', thread: 0 }) })
  draftText.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); draftForm.requestSubmit() }
    if (ev.key === 'Escape') { ev.preventDefault(); cancelDraft() }
  })
  $('#thread-new-cancel').addEventListener('click', cancelDraft)
  draftForm.addEventListener('submit', (ev) => {
    ev.preventDefault()
    const d = draft
    const text = draftText.value.trim()
    if (d === null) return
    if (text === '') { draftText.focus(); return }
    void run('Starting the thread failed', async (project) => {
      const n = d.node === null ? undefined : board.nodes.get(d.node)
      const anchor = n === undefined || d.node === null ? pointAnchor(d.at.x, d.at.y) : pointAnchor(d.at.x, d.at.y, { map: 'nodes', key: d.node })
      const metadata = n === undefined
        ? undefined
        : { dx: Math.round(d.at.x - Number(n.get('x') ?? 0)), dy: Math.round(d.at.y - Number(n.get('y') ?? 0)) }
      const t = await talk.api.threads.create(project, talk.room, { anchor, body: textBody(text, talk.people.ids()), metadata })
      talk.typing.clear()
      cancelDraft()
      if (filter !== 'open') setFilter('open')
      selected = t.id
    })
  })

  // --- roles -----------------------------------------------------------------------------------
  const applyRole = (): void => {
    const ok = canComment()
    readOnlyNote.hidden = ok
    readOnlyNote.textContent = ok ? '' : `You are signed in as a ${role()}: you can read the threads, not comment, react or resolve.`
    tool.disabled = !ok
    tool.title = ok ? 'Comment: click the canvas or a node to start a thread (Esc to stop)' : commentReason()
    if (!ok) { setTool(false); cancelDraft() }
    draftText.disabled = !ok
    draftPost.disabled = !ok
    render()
  }

  // --- panel -----------------------------------------------------------------------------------
  const previousView = canvas.onViewChange
  canvas.onViewChange = () => { previousView(); renderPins() }
  // Nodes renamed, deleted or restored change what the list says (labels, "node deleted").
  let frame = 0
  board.observe(() => {
    if (frame === 0) frame = requestAnimationFrame(() => { frame = 0; render() })
  })
  talk.people.onChange(render)
  talk.typing.onChange(() => {
    for (const li of list.querySelectorAll<HTMLElement>('li.thread')) {
      li.querySelector<HTMLElement>('.thread-typing')!.textContent = typingLine(talk.typing.who({ in: 'thread', thread: Number(li.dataset.thread) }))
    }
  })

  const panel: ThreadsPanel = {
    get isOpen () { return !host.hidden },
    open () {
      if (!host.hidden) return
      host.hidden = false
      document.body.classList.add('threads-open')
      opts.onToggle?.()
    },
    close () {
      if (host.hidden) return
      host.hidden = true
      document.body.classList.remove('threads-open')
      opts.onToggle?.()
    },
    toggle () { if (host.hidden) panel.open(); else panel.close() },
    start (l) {
      live = l
      l.on(render)
      l.onError((err) => showError('Loading the threads failed', err))
      render()
    },
    openThread (id) {
      panel.open()
      const t = live?.current.get(id)
      if (t !== undefined && (t.resolved === null) !== (filter === 'open')) setFilter(t.resolved === null ? 'open' : 'resolved')
      select(id, true)
    },
    showError,
    setTool,
    applyRole,
    threads: () => all(),
    orphaned: (id) => {
      const t = live?.current.get(id)
      return t !== undefined && isOrphaned(t)
    }
  }
  $('#threads-close').addEventListener('click', () => panel.close())
  host.setAttribute('aria-busy', 'false')
  applyRole()
  return panel
}
