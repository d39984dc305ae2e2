// The board's history panel: versions (save one, preview it, compare it with now, restore it),
// branches (fork now or at a version, open one, preview a merge, merge) and a replay slider over
// the session's stored changes. Every call goes through the SDK's `api.history` with the page's
// room token (session.ts); every API error is shown in the panel. Viewers and commenters see
// the same panel with the buttons that change something disabled, and the reason said.
// Branches also carry their reviews (reviews.ts): ask members for one, give a verdict, and see
// why a merge is refused while the project requires an approved review.

import { type Branch, type Changes, type ConversationRoutes, type Role, type Version } from '../../src/index.js'
import { describeChanges } from './changes.js'
import { validRoom } from './identity.js'
import type { Board } from './model.js'
import type { Viewport } from './canvas.js'
import type { Preview, PreviewAction } from './preview.js'
import { mountReviews, type ReviewsBox } from './reviews.js'
import { BRANCH_SEPARATOR, type Session } from './session.js'
import type { People } from './talk.js'
import { describeError, escapeHtml, statusOf, when } from './ui.js'

/** What the panel needs from the board page. */
export interface HistoryOptions {
  /** The panel's element (`#history` of index.html). */
  host: HTMLElement
  room: string
  session: Session
  /** The live board (names nodes in diffs). */
  board: Board
  preview: Preview
  /** The role the page acts with now. */
  role: () => Role
  /** A link to this app showing `room`, with the page's other parameters. */
  roomLink: (room: string) => string
  /** Runs before a preview opens. */
  beforePreview?: () => void
  /** The live canvas's viewport: the replay starts from it, so the board is framed as live. */
  liveView?: () => Viewport
  /** Reviews of branches: the conversation routes, the project's members, the local user. */
  reviews?: { api: ConversationRoutes, people: People, me: () => string }
}

/** The panel, for the board page and for scripts. */
export interface HistoryPanel {
  readonly isOpen: boolean
  open (): void
  close (): void
  toggle (): void
  /** Reloads the versions and the open tab. */
  refresh (): Promise<void>
  /** Applies the current role to the buttons (after a new token). */
  applyRole (): void
  /** The replay stops loaded: each distinct instant of the stored changes. */
  stops (): ReplayStop[]
  /** Opens the Branches tab with the reviews of `branch` (this board when it is the room). */
  showReviews (branch: string): void
  /** A review of this board changed (the room told of it): reloads the reviews shown for it. */
  reviewsChanged (): void
}

/** One position of the replay slider: an instant at which changes were stored. */
export interface ReplayStop {
  at: number
  /** The last change stored at that instant. */
  seq: number
  /** Changes stored up to and including that instant. */
  count: number
  authors: string[]
}

type Tab = 'versions' | 'branches' | 'replay'

const EDITING: Role[] = ['editor', 'owner']
/** Most pages of stored changes the replay loads (1000 changes each). */
const REPLAY_PAGES = 10

const KIND_TITLE: Record<Version['kind'], string> = {
  auto: 'Automatic version',
  named: 'Version',
  restore: 'Restore',
  merge: 'Merge',
  fork: 'Fork'
}

/** Wires the history panel. */
export function mountHistory (opts: HistoryOptions): HistoryPanel {
  const { host, room, session, preview } = opts
  const api = session.api.history
  const $ = <T extends HTMLElement>(sel: string): T => {
    const el = host.querySelector<T>(sel)
    if (el === null) throw new Error(`missing ${sel}`)
    return el
  }
  const errorBox = $('#history-error')
  const errorText = $('#history-error-text')
  const info = $('#history-info')
  const readOnlyNote = $('#history-readonly')
  const versionList = $('#version-list')
  const versionMore = $<HTMLButtonElement>('#version-more')
  const diffBox = $('#diff')
  const branchParent = $('#branch-parent')
  const branchList = $('#branch-list')
  const branchFrom = $<HTMLSelectElement>('#branch-from')
  const branchName = $<HTMLInputElement>('#branch-name')
  const branchCreated = $('#branch-created')
  const mergeBox = $('#merge-preview')
  const slider = $<HTMLInputElement>('#replay-slider')
  const replayLabel = $('#replay-label')
  const replaySummary = $('#replay-summary')
  $('#branch-prefix').textContent = `${room}${BRANCH_SEPARATOR}`

  let tab: Tab = 'versions'
  let versions: Version[] = []
  let nextBefore: number | null = null
  let branches: Branch[] = []
  let stops: ReplayStop[] = []
  let replayTotal = 0
  let busy = 0

  // --- roles ---------------------------------------------------------------------------------
  const canEdit = (): boolean => EDITING.includes(opts.role())
  const reason = (what: string): string =>
    `${what} needs an editor; you are signed in as a ${opts.role()}.`
  /** Disables every `[data-needs-edit]` button for viewers and commenters, saying why. */
  const applyRole = (): void => {
    const edit = canEdit()
    host.dataset.canEdit = String(edit)
    readOnlyNote.hidden = edit
    readOnlyNote.textContent = edit
      ? ''
      : `You are signed in as a ${opts.role()}: you can browse, preview, compare and replay history. Saving versions, restoring, forking and merging need an editor.`
    for (const b of host.querySelectorAll<HTMLButtonElement | HTMLInputElement>('[data-needs-edit]')) {
      b.disabled = !edit
      b.title = edit ? '' : reason(b.dataset.needsEdit ?? 'This')
    }
  }

  // --- errors and notes --------------------------------------------------------------------
  /** The status of the last error shown (0 when it was not an answer). */
  let lastErrorStatus = 0
  const showError = (what: string, err: unknown): void => {
    lastErrorStatus = statusOf(err)
    errorBox.hidden = false
    errorBox.dataset.status = String(lastErrorStatus)
    errorText.textContent = `${what}: ${describeError(err)}`
  }
  const clearError = (): void => {
    errorBox.hidden = true
    errorText.textContent = ''
    delete errorBox.dataset.status
  }
  $('#history-error-dismiss').addEventListener('click', clearError)
  const note = (text: string): void => { info.textContent = text }

  /**
   * Runs one panel action: its error, if any, is shown in the panel (never thrown away). A
   * `keep` run (a reload beside an action) leaves the error shown before it in place.
   */
  const run = async (what: string, fn: () => Promise<void>, keep = false): Promise<boolean> => {
    if (!keep) clearError()
    busy++
    host.setAttribute('aria-busy', 'true')
    try {
      await fn()
      return true
    } catch (err) {
      showError(what, err)
      return false
    } finally {
      if (--busy === 0) host.setAttribute('aria-busy', 'false')
    }
  }

  const who = (author: string): string => {
    if (author === `user:${session.sub}`) return 'you'
    if (author === 'room') return 'the room (automatic)'
    return author.startsWith('user:') ? author.slice(5) : author
  }
  const labelOf = (id: string): string | undefined => {
    const n = opts.board.nodes.get(id)
    return n === undefined ? undefined : String(n.get('label') ?? '')
  }
  const versionTitle = (v: Version): string => v.name ?? `${KIND_TITLE[v.kind]} #${v.id}`
  const shortBranch = (name: string): string =>
    name.startsWith(`${room}${BRANCH_SEPARATOR}`) ? name.slice(room.length + 1) : name

  /** Renders a diff (or merge preview) into `box`. */
  const renderChanges = (box: HTMLElement, heading: string, changes: Changes, authors: string[], empty: string, extra = ''): void => {
    const lines = describeChanges(changes, labelOf)
    box.hidden = false
    box.innerHTML = `<h3>${escapeHtml(heading)}</h3>` +
      (authors.length > 0 ? `<p class="muted">Changes by ${escapeHtml(authors.map(who).join(', '))}</p>` : '') +
      (lines.length === 0
        ? `<p class="diff-empty">${escapeHtml(empty)}</p>`
        : `<ul class="diff-lines">${lines.map((l) => `<li class="diff-${l.sign === '+' ? 'add' : l.sign === '-' ? 'del' : 'mod'}"><span class="sign">${l.sign === '-' ? '−' : l.sign}</span>${escapeHtml(l.text)}</li>`).join('')}</ul>`) +
      extra
  }

  // --- versions ------------------------------------------------------------------------------
  const renderVersions = (): void => {
    if (versions.length === 0) {
      versionList.innerHTML = '<li class="empty">No versions yet. The room takes one on its own within five minutes of a change, or save one now.</li>'
    } else {
      versionList.innerHTML = versions.map((v) => `
        <li class="hitem" data-version="${v.id}" data-kind="${v.kind}">
          <div class="hitem-head"><span class="tag tag-${v.kind}">${v.kind}</span><strong class="vname">${escapeHtml(versionTitle(v))}</strong></div>
          <div class="hitem-meta">#${v.id} · ${escapeHtml(when(v.at))} · by ${escapeHtml(who(v.author))}${v.authors.length > 0 ? ` · changes by ${escapeHtml(v.authors.map(who).join(', '))}` : ''}</div>
          ${v.description !== undefined && v.description !== '' ? `<div class="hitem-desc">${escapeHtml(v.description)}</div>` : ''}
          <div class="hitem-actions">
            <button type="button" data-act="preview">Preview</button>
            <button type="button" data-act="diff">Compare with now</button>
            <button type="button" data-act="restore" data-needs-edit="Restoring a version">Restore</button>
            <button type="button" data-act="fork" data-needs-edit="Forking a branch">Branch from here</button>
          </div>
        </li>`).join('')
    }
    versionMore.hidden = nextBefore === null
    markPreviewed()
    // The fork form offers every listed version as a starting point.
    const chosen = branchFrom.value
    branchFrom.replaceChildren(new Option('now (the current board)', ''),
      ...versions.map((v) => new Option(`#${v.id} ${versionTitle(v)} (${when(v.at)})`, String(v.id))))
    branchFrom.value = versions.some((v) => String(v.id) === chosen) ? chosen : ''
    renderParent()
    applyRole()
  }

  const loadVersions = async (more = false): Promise<void> => {
    const project = await session.project()
    const page = await api.versions(project, room, { limit: 50, before: more && nextBefore !== null ? nextBefore : undefined })
    versions = more ? [...versions, ...page.versions] : page.versions
    nextBefore = page.next_before
    renderVersions()
  }

  const restore = (id: number): Promise<boolean> => run(`Restoring version #${id} failed`, async () => {
    const project = await session.project()
    const r = await api.restore(project, room, id)
    if (preview.key === `version:${id}`) preview.close()
    diffBox.hidden = true // compared with a board that is no more
    note(r.changed
      ? `Restored version #${id}${r.version !== undefined ? ` as a new change (version #${r.version.id})` : ''}: every open board converges to it.`
      : `The board already matches version #${id}: nothing to restore.`)
    await loadVersions()
  })

  const previewVersion = (id: number): Promise<boolean> => run(`Previewing version #${id} failed`, async () => {
    const project = await session.project()
    const update = await api.versionUpdate(project, room, id)
    const v = versions.find((x) => x.id === id)
    const actions: PreviewAction[] = [{
      label: 'Restore this version',
      run: () => { void restore(id) },
      disabledReason: canEdit() ? undefined : reason('Restoring a version')
    }]
    opts.beforePreview?.()
    preview.show(`version:${id}`, `Version #${id}${v !== undefined ? ` · ${versionTitle(v)}` : ''}`, update, { actions })
    markPreviewed()
  })

  const diffVersion = (id: number): Promise<boolean> => run(`Comparing version #${id} failed`, async () => {
    const project = await session.project()
    const d = await api.diff(project, room, id, 'current')
    const v = versions.find((x) => x.id === id)
    renderChanges(diffBox, `Since version #${id}${v !== undefined ? ` (${versionTitle(v)})` : ''}`, d.changes, d.authors,
      'Nothing changed: the board matches this version.')
    diffBox.dataset.version = String(id)
  })

  /** Marks the version row shown in the preview. */
  function markPreviewed (): void {
    for (const li of versionList.querySelectorAll<HTMLElement>('[data-version]')) {
      li.classList.toggle('previewed', preview.key === `version:${li.dataset.version ?? ''}`)
    }
  }

  versionList.addEventListener('click', (ev) => {
    const button = (ev.target as Element).closest<HTMLButtonElement>('button[data-act]')
    const id = Number(button?.closest<HTMLElement>('[data-version]')?.dataset.version)
    if (button === null || !Number.isInteger(id)) return
    switch (button.dataset.act) {
      case 'preview': void previewVersion(id); break
      case 'diff': void diffVersion(id); break
      case 'restore': void restore(id); break
      case 'fork':
        branchFrom.value = String(id)
        showTab('branches')
        branchName.focus()
        break
    }
  })
  versionMore.addEventListener('click', () => { void run('Listing older versions failed', () => loadVersions(true)) })

  $<HTMLFormElement>('#version-form').addEventListener('submit', (ev) => {
    ev.preventDefault()
    const input = $<HTMLInputElement>('#version-name')
    const name = input.value.trim()
    if (name === '') {
      showError('Saving a version failed', new Error('give the version a name'))
      input.focus()
      return
    }
    void run('Saving a version failed', async () => {
      const project = await session.project()
      const v = await api.createVersion(project, room, { name })
      input.value = ''
      note(`Saved version #${v.id} “${versionTitle(v)}”.`)
      await loadVersions()
    })
  })

  // --- branches ------------------------------------------------------------------------------
  /** Whether this board is a branch: the demo's naming says so, or the room holds a fork version. */
  const isBranch = (): boolean => room.includes(BRANCH_SEPARATOR) || versions.some((v) => v.kind === 'fork')

  function renderParent (): void {
    branchParent.hidden = !isBranch()
    if (branchParent.hidden || branchParent.childElementCount > 0) return
    branchParent.innerHTML = `<p>This board is a branch. Send what was done here to the board it was forked from:</p>
      <div class="hitem-actions">
        <button type="button" data-act="preview-merge" data-target="self">Preview merge into parent</button>
        <button type="button" data-act="merge" data-target="self" data-needs-edit="Merging">Merge into parent</button>
      </div>
      <div class="self-reviews"></div>`
    const box = branchParent.querySelector<HTMLElement>('.self-reviews')
    if (box !== null && opts.reviews !== undefined) {
      reviewBoxes.set(room, reviewsIn(box, room))
      if (tab === 'branches') void reviewBoxes.get(room)?.load()
    }
  }

  // --- reviews -------------------------------------------------------------------------------
  /** Reviews boxes shown now, by branch (this board's own when it is a branch). */
  const reviewBoxes = new Map<string, ReviewsBox>()
  /** Branches of the list whose reviews are unfolded. */
  const unfolded = new Set<string>()
  const reviewsIn = (box: HTMLElement, branch: string): ReviewsBox => mountReviews(box, branch, branch === room ? 'this branch' : shortBranch(branch), {
    api: opts.reviews!.api,
    people: opts.reviews!.people,
    me: opts.reviews!.me,
    project: () => session.project(),
    role: opts.role,
    run,
    note,
    rendered: applyRole
  })
  /** Mounts (and loads) the reviews boxes of the unfolded rows of the branch list. */
  const mountRowReviews = (): void => {
    for (const [branch] of reviewBoxes) if (branch !== room) reviewBoxes.delete(branch)
    if (opts.reviews === undefined) return
    for (const li of branchList.querySelectorAll<HTMLElement>('[data-branch]')) {
      const branch = li.dataset.branch ?? ''
      const box = li.querySelector<HTMLElement>('.branch-reviews')
      const toggle = li.querySelector<HTMLButtonElement>('[data-act="reviews"]')
      if (box === null) continue
      box.hidden = !unfolded.has(branch)
      toggle?.setAttribute('aria-expanded', String(unfolded.has(branch)))
      if (unfolded.has(branch)) {
        const r = reviewsIn(box, branch)
        reviewBoxes.set(branch, r)
        void r.load()
      }
    }
  }
  const toggleReviews = (branch: string, on = !unfolded.has(branch)): void => {
    if (on) unfolded.add(branch)
    else unfolded.delete(branch)
    mountRowReviews()
  }

  const renderBranches = (): void => {
    branchList.innerHTML = branches.length === 0
      ? '<li class="empty">No branches of this board yet.</li>'
      : branches.map((b) => `
        <li class="hitem" data-branch="${escapeHtml(b.name)}">
          <div class="hitem-head"><span class="tag tag-fork">branch</span><strong class="bname">${escapeHtml(shortBranch(b.name))}</strong></div>
          <div class="hitem-meta"><span class="ahead">${b.ahead ?? '?'} ahead</span> · <span class="behind">${b.behind ?? '?'} behind</span> · forked ${escapeHtml(when(b.created_at))} by ${escapeHtml(who(b.created_by))}${b.fork_version !== null ? ` at version #${b.fork_version}` : ''}${b.merges > 0 && b.merged_at !== null ? ` · merged ${b.merges}×, last at ${escapeHtml(when(b.merged_at))}` : ''}</div>
          <div class="hitem-actions">
            <a class="button" data-act="open" href="${escapeHtml(opts.roomLink(b.name))}">Open</a>
            <button type="button" data-act="preview-merge">Preview merge</button>
            <button type="button" data-act="merge" data-needs-edit="Merging">Merge into this board</button>
            ${opts.reviews !== undefined ? '<button type="button" data-act="reviews" aria-expanded="false">Reviews</button>' : ''}
          </div>
          <div class="branch-reviews" hidden></div>
        </li>`).join('')
    mountRowReviews()
    applyRole()
  }

  const loadBranches = async (): Promise<void> => {
    const project = await session.project()
    branches = (await api.branches(project, room)).branches
    renderBranches()
    await reviewBoxes.get(room)?.load()
  }

  /** Previews merging `branch` (this board when it is `room`) into its parent. */
  const previewMerge = (branch: string): Promise<boolean> => run(`Previewing the merge of “${shortBranch(branch)}” failed`, async () => {
    const project = await session.project()
    const m = await api.previewMerge(project, branch)
    const self = branch === room
    const heading = self ? `Merging this branch into “${m.parent}” would:` : `Merging “${shortBranch(branch)}” into this board would:`
    const extra = `<div class="hitem-actions"><button type="button" data-act="merge" data-branch="${escapeHtml(branch)}" data-needs-edit="Merging">Merge now</button>` +
      (self ? `<a class="button" href="${escapeHtml(opts.roomLink(m.parent))}">Open “${escapeHtml(m.parent)}”</a>` : '') + '</div>'
    renderChanges(mergeBox, heading, m.changes, m.authors, `Nothing to merge: “${m.parent}” already has everything of the branch.`, extra)
    mergeBox.dataset.branch = branch
    applyRole()
  })

  const merge = async (branch: string): Promise<boolean> => {
    const merged = await mergeOnce(branch)
    // A merge the review gate refused (409): show the branch's reviews, where one is asked for.
    if (!merged && lastErrorStatus === 409 && opts.reviews !== undefined) {
      if (branch === room) await reviewBoxes.get(room)?.load()
      else toggleReviews(branch, true)
    }
    return merged
  }
  const mergeOnce = (branch: string): Promise<boolean> => run(`Merging “${shortBranch(branch)}” failed`, async () => {
    const project = await session.project()
    const r = await api.merge(project, branch)
    const into = branch === room ? `“${r.parent}”` : 'this board'
    note(r.changed
      ? `Merged “${shortBranch(branch)}” into ${into}${r.version !== undefined ? ` (version #${r.version.id})` : ''}.`
      : `Nothing to merge: ${into} already has everything of “${shortBranch(branch)}”.`)
    mergeBox.hidden = true
    diffBox.hidden = true
    await Promise.all([loadBranches(), loadVersions()])
  })

  const onBranchClick = (ev: Event): void => {
    const button = (ev.target as Element).closest<HTMLButtonElement>('button[data-act]')
    if (button === null) return
    const branch = button.dataset.target === 'self'
      ? room
      : button.dataset.branch ?? button.closest<HTMLElement>('[data-branch]')?.dataset.branch
    if (branch === undefined) return
    if (button.dataset.act === 'preview-merge') void previewMerge(branch)
    if (button.dataset.act === 'merge') void merge(branch)
    if (button.dataset.act === 'reviews') toggleReviews(branch)
  }
  branchList.addEventListener('click', onBranchClick)
  branchParent.addEventListener('click', onBranchClick)
  mergeBox.addEventListener('click', onBranchClick)

  $<HTMLFormElement>('#branch-form').addEventListener('submit', (ev) => {
    ev.preventDefault()
    const own = branchName.value.trim()
    const name = `${room}${BRANCH_SEPARATOR}${own}`
    if (own === '' || !validRoom(name)) {
      showError('Forking failed', new Error(own === ''
        ? 'name the branch'
        : `“${name}” is not a room name: up to 128 letters, digits and . _ ~ - :`))
      branchName.focus()
      return
    }
    const version = branchFrom.value === '' ? undefined : Number(branchFrom.value)
    void run(`Forking “${name}” failed`, async () => {
      const project = await session.project()
      const b = await api.branch(project, room, { name, version })
      branchName.value = ''
      branchCreated.hidden = false
      branchCreated.innerHTML = `Created the branch <strong>${escapeHtml(b.name)}</strong>` +
        `${b.fork_version !== null ? ` from version #${b.fork_version}` : ' from the current board'}. ` +
        `<a id="branch-open" href="${escapeHtml(opts.roomLink(b.name))}">Open it</a> · ` +
        `<a href="${escapeHtml(opts.roomLink(b.name))}" target="_blank" rel="noopener">in a new tab</a>`
      await loadBranches()
    })
  })

  // --- replay --------------------------------------------------------------------------------
  const stopLabel = (i: number): string => {
    const s = stops[i]
    if (s === undefined) return ''
    return `${when(s.at, true)} · change ${s.count} of ${replayTotal} · by ${s.authors.map(who).join(', ')}`
  }

  const loadReplay = async (): Promise<void> => {
    const project = await session.project()
    const found: ReplayStop[] = []
    let total = 0
    let after: number | undefined
    let truncated = false
    for (let page = 0; ; page++) {
      const r = await api.replay(project, room, { after, limit: 1000 })
      for (const u of r.updates) {
        total++
        const last = found[found.length - 1]
        if (last !== undefined && last.at === u.at) {
          last.seq = u.seq
          last.count = total
          if (!last.authors.includes(u.author)) last.authors.push(u.author)
        } else {
          found.push({ at: u.at, seq: u.seq, count: total, authors: [u.author] })
        }
      }
      if (r.next_after === null) break
      if (page + 1 >= REPLAY_PAGES) {
        truncated = true
        break
      }
      after = r.next_after
    }
    stops = found
    replayTotal = total
    slider.min = '0'
    slider.max = String(Math.max(0, stops.length - 1))
    slider.value = slider.max
    slider.disabled = stops.length === 0
    slider.dataset.stops = String(stops.length)
    replaySummary.textContent = stops.length === 0
      ? 'No stored changes yet.'
      : `${total} stored ${total === 1 ? 'change' : 'changes'} from ${when(stops[0].at)} to ${when(stops[stops.length - 1].at)}${truncated ? ` (the first ${total} only)` : ''}. Drag to see the board at any of them.`
    replayLabel.textContent = stopLabel(stops.length - 1)
  }

  let asked = 0
  let timer = 0
  const showStop = (i: number): void => {
    const stop = stops[i]
    if (stop === undefined) return
    const n = ++asked
    void run('Replaying failed', async () => {
      const project = await session.project()
      const update = await api.atUpdate(project, room, stop.at)
      if (n !== asked) return // the slider moved on meanwhile
      opts.beforePreview?.()
      // Scrubbing keeps the view still; the first instant shown is framed as the live board is.
      const view = preview.key?.startsWith('at:') === true ? 'keep' : opts.liveView?.() ?? 'fit'
      preview.show(`at:${stop.at}`, `As it was at ${when(stop.at, true)} (change ${stop.count} of ${replayTotal})`, update, { view })
      slider.dataset.shown = String(i)
    })
  }
  slider.addEventListener('input', () => {
    const i = Number(slider.value)
    replayLabel.textContent = stopLabel(i)
    clearTimeout(timer)
    timer = window.setTimeout(() => showStop(i), 80)
  })
  $('#replay-live').addEventListener('click', () => preview.close())
  $('#replay-reload').addEventListener('click', () => { void run('Loading the stored changes failed', loadReplay) })

  // --- tabs and panel ------------------------------------------------------------------------
  const loadTab = (t: Tab): Promise<boolean> => {
    switch (t) {
      case 'versions': return run('Listing versions failed', () => loadVersions())
      case 'branches': return run('Listing branches failed', async () => { await Promise.all([loadBranches(), versions.length === 0 ? loadVersions() : undefined]) })
      case 'replay': return run('Loading the stored changes failed', loadReplay)
    }
  }
  function showTab (t: Tab): void {
    const changed = t !== tab
    tab = t
    host.dataset.tab = t
    for (const b of host.querySelectorAll<HTMLButtonElement>('[role="tab"]')) b.setAttribute('aria-selected', String(b.dataset.tab === t))
    for (const s of host.querySelectorAll<HTMLElement>('[data-panel]')) s.hidden = s.dataset.panel !== t
    if (changed && t !== 'versions') void loadTab(t)
  }
  for (const b of host.querySelectorAll<HTMLButtonElement>('[role="tab"]')) {
    b.addEventListener('click', () => showTab(b.dataset.tab as Tab))
  }

  preview.onClose = () => {
    markPreviewed()
    delete slider.dataset.shown
  }

  const refresh = async (): Promise<void> => {
    await loadTab('versions')
    if (tab !== 'versions') await loadTab(tab)
  }
  $('#history-refresh').addEventListener('click', () => { void refresh() })

  const panel: HistoryPanel = {
    get isOpen () { return !host.hidden },
    open () {
      if (!host.hidden) return
      host.hidden = false
      document.body.classList.add('history-open')
      void refresh()
    },
    close () {
      host.hidden = true
      document.body.classList.remove('history-open')
      preview.close()
    },
    toggle () { if (host.hidden) panel.open(); else panel.close() },
    refresh,
    applyRole,
    stops: () => stops.map((s) => ({ ...s, authors: [...s.authors] })),
    showReviews (branch) {
      panel.open()
      showTab('branches')
      if (branch === room) void reviewBoxes.get(room)?.load()
      else toggleReviews(branch, true)
    },
    reviewsChanged () {
      void reviewBoxes.get(room)?.load()
    }
  }
  $('#history-close').addEventListener('click', () => panel.close())
  host.setAttribute('aria-busy', 'false')
  showTab('versions')
  applyRole()
  return panel
}
