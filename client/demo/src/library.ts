// The asset panel (topbar **Assets**): the project's library as a grid of thumbnails, or the
// assets this board refers to, each with its tags, licence and how many documents use it; an
// upload button; "Place" puts an image on the canvas. All through `api.assets` with the page's
// room token (viewers read; editors upload, tag and license).
//
// Thumbnails are previews (`POST …/links {preview: {w: 256}}`) where the previews worker runs;
// where it does not (the preview answers an error), images fall back to a signed link of their
// content, other files to an icon. Links come from the board's link cache.

import { assetUri, type Asset, type AssetLinks, type AssetRoutes, type AssetStorage, type Role } from '../../src/index.js'
import { bytes, renderJob, type Uploads } from './uploads.js'
import { describeError, escapeHtml, statusOf, syncList } from './ui.js'

/** What the panel needs from the board page. */
export interface LibraryOptions {
  /** The panel (`#assets` of index.html). */
  host: HTMLElement
  api: AssetRoutes
  project: () => Promise<string>
  room: string
  role: () => Role
  links: AssetLinks
  uploads: Uploads
  /** Puts an image asset on the canvas. */
  place: (asset: Asset) => void
  /** Runs after the panel opened or closed. */
  onToggle?: () => void
}

/** The panel, for the board page and for scripts. */
export interface LibraryPanel {
  readonly isOpen: boolean
  open (): void
  close (): void
  toggle (): void
  /** Loads the list (and the storage line) again. */
  refresh (): Promise<void>
  /** The assets shown now. */
  assets (): Asset[]
  showError (what: string, err: unknown): void
  applyRole (): void
}

/** While open, the panel reloads this often: usage changes as rooms record references. */
const POLL_MS = 5000
const RASTER = ['image/png', 'image/jpeg', 'image/gif', 'image/webp']

const canEdit = (role: Role): boolean => role === 'editor' || role === 'owner'

/** A short word for a file's type: PNG, PDF, ZIP… */
function typeWord (asset: Asset): string {
  const ext = /\.([a-z0-9]{1,5})$/i.exec(asset.name)?.[1]
  if (ext !== undefined) return ext.toUpperCase()
  const sub = asset.content_type.split('/')[1] ?? 'file'
  return sub.replace(/^x-|\+.*$/g, '').slice(0, 5).toUpperCase()
}

export function mountLibrary (opts: LibraryOptions): LibraryPanel {
  const { host, api, links } = opts
  const $ = <T extends HTMLElement>(sel: string): T => {
    const el = host.querySelector<T>(sel)
    if (el === null) throw new Error(`missing ${sel}`)
    return el
  }
  const grid = $('#asset-grid')
  const empty = $('#asset-empty')
  const storageLine = $('#asset-storage')
  const search = $<HTMLInputElement>('#asset-search')
  const imagesOnly = $<HTMLInputElement>('#asset-images')
  const uploadButton = $<HTMLButtonElement>('#asset-upload')
  const picker = $<HTMLInputElement>('#asset-file')
  const uploadList = $('#asset-uploads')
  const readOnlyNote = $('#assets-readonly')
  const errorBox = $('#assets-error')
  const errorText = $('#assets-error-text')
  const tabs = [...host.querySelectorAll<HTMLButtonElement>('[data-scope]')]

  let scope: 'library' | 'board' = 'library'
  let shown: Array<{ asset: Asset, refs?: number }> = []
  let storage: AssetStorage | null = null
  let timer = 0
  let loading: Promise<void> | null = null
  /** Set once a preview failed to load: this server has no previews worker (yet). */
  let previewsFail = false

  const showError = (what: string, err: unknown): void => {
    errorBox.hidden = false
    errorBox.dataset.status = String(statusOf(err))
    errorText.textContent = `${what}: ${describeError(err)}`
  }
  const clearError = (): void => { errorBox.hidden = true; errorText.textContent = '' }
  $('#assets-error-dismiss').addEventListener('click', clearError)

  /** A thumbnail: the preview, else the image itself, else an icon. */
  const thumb = (box: HTMLElement, asset: Asset): void => {
    const uri = assetUri(asset.id, asset.version)
    if (box.dataset.uri === uri) return
    box.dataset.uri = uri
    box.replaceChildren()
    const icon = (): void => {
      const span = document.createElement('span')
      span.className = 'asset-icon'
      span.textContent = typeWord(asset)
      box.replaceChildren(span)
    }
    if (!asset.content_type.startsWith('image/')) { icon(); return }
    const img = document.createElement('img')
    img.alt = asset.name
    img.loading = 'lazy'
    img.draggable = false
    const content = (): void => {
      img.onerror = icon
      links.resolve(uri).then((url) => { if (box.dataset.uri === uri) img.src = url }, icon)
    }
    if (RASTER.includes(asset.content_type) && !previewsFail) {
      img.onerror = () => { previewsFail = true; img.dataset.fallback = 'content'; content() }
      links.resolve(uri, { preview: { w: 256 } }).then((url) => { if (box.dataset.uri === uri) img.src = url }, content)
    } else {
      img.dataset.fallback = 'content'
      content()
    }
    box.appendChild(img)
  }

  const usageLine = (asset: Asset, refs?: number): string => {
    if (refs !== undefined) return `${refs} ${refs === 1 ? 'reference' : 'references'} here · used by ${asset.used_by} ${asset.used_by === 1 ? 'document' : 'documents'}`
    return asset.used_by === 0 ? 'Not used yet' : `Used by ${asset.used_by} ${asset.used_by === 1 ? 'document' : 'documents'}`
  }

  const licenceLine = (asset: Asset): string => {
    const l = asset.licence
    if (l === null) return 'No licence given'
    return [l.spdx ?? (l.text !== null && l.text !== undefined ? 'Custom licence' : null), l.attribution !== null && l.attribution !== undefined ? `by ${l.attribution}` : null]
      .filter((x) => x !== null).join(' · ') || 'Licence given'
  }

  /** Runs an edit of one asset, then shows the answer. */
  const edit = (what: string, run: (project: string) => Promise<Asset>): void => {
    clearError()
    void (async () => {
      try {
        const updated = await run(await opts.project())
        shown = shown.map((s) => (s.asset.id === updated.id ? { ...s, asset: updated } : s))
        render()
      } catch (err) {
        showError(what, err)
      }
    })()
  }

  const createCard = (item: { asset: Asset }): HTMLElement => {
    const li = document.createElement('li')
    li.className = 'asset-card'
    li.dataset.asset = item.asset.id
    li.innerHTML = '<div class="asset-thumb"></div><div class="asset-body">' +
      '<div class="asset-name"></div><div class="asset-meta"></div><div class="asset-usage"></div>' +
      '<div class="asset-licence"><span class="licence-text"></span> <button type="button" class="ghost link-button" data-act="licence">Edit</button></div>' +
      '<form class="licence-form" hidden autocomplete="off"><input name="spdx" maxlength="128" placeholder="SPDX id, e.g. CC-BY-4.0" aria-label="Licence (SPDX id)">' +
      '<input name="attribution" maxlength="1024" placeholder="Attribution" aria-label="Attribution">' +
      '<div class="reply-actions"><button type="submit" class="primary">Save</button><button type="button" data-act="clear-licence">Clear</button><button type="button" data-act="cancel-licence">Cancel</button></div></form>' +
      '<div class="asset-tags"></div>' +
      '<form class="tag-form" autocomplete="off"><input maxlength="64" placeholder="Add a tag" aria-label="Add a tag"></form>' +
      '<div class="hitem-actions"><button type="button" data-act="place">Place on canvas</button><button type="button" data-act="download">Download</button></div></div>'
    const id = item.asset.id
    const current = (): Asset | undefined => shown.find((s) => s.asset.id === id)?.asset
    const licenceForm = li.querySelector<HTMLFormElement>('.licence-form')!
    li.addEventListener('click', (ev) => {
      const act = (ev.target as HTMLElement).closest<HTMLElement>('[data-act]')?.dataset.act
      const asset = current()
      if (act === undefined || asset === undefined) return
      if (act === 'place') opts.place(asset)
      else if (act === 'download') {
        void opts.project().then((p) => api.signedUrl(p, id, { download: true, expiresIn: 300 })).then((link) => { location.assign(link.url) }, (err) => showError('Download failed', err))
      } else if (act === 'licence') {
        licenceForm.hidden = !licenceForm.hidden
        const spdx = licenceForm.elements.namedItem('spdx') as HTMLInputElement
        const attribution = licenceForm.elements.namedItem('attribution') as HTMLInputElement
        spdx.value = asset.licence?.spdx ?? ''
        attribution.value = asset.licence?.attribution ?? ''
        if (!licenceForm.hidden) spdx.focus()
      } else if (act === 'cancel-licence') {
        licenceForm.hidden = true
      } else if (act === 'clear-licence') {
        licenceForm.hidden = true
        edit('Clearing the licence failed', (p) => api.update(p, id, { licence: null }))
      } else if (act === 'untag') {
        const tag = (ev.target as HTMLElement).closest<HTMLElement>('[data-tag]')?.dataset.tag
        if (tag !== undefined) edit('Removing the tag failed', (p) => api.untag(p, id, tag))
      }
    })
    licenceForm.addEventListener('submit', (ev) => {
      ev.preventDefault()
      const value = (name: string): string | null => {
        const v = (licenceForm.elements.namedItem(name) as HTMLInputElement).value.trim()
        return v === '' ? null : v
      }
      licenceForm.hidden = true
      edit('Saving the licence failed', (p) => api.update(p, id, { licence: { spdx: value('spdx'), attribution: value('attribution') } }))
    })
    const tagForm = li.querySelector<HTMLFormElement>('.tag-form')!
    tagForm.addEventListener('submit', (ev) => {
      ev.preventDefault()
      const input = tagForm.querySelector('input')!
      const tag = input.value.trim().toLowerCase()
      if (tag === '') return
      input.value = ''
      edit('Adding the tag failed', (p) => api.tag(p, id, tag))
    })
    return li
  }

  const updateCard = (li: HTMLElement, item: { asset: Asset, refs?: number }): void => {
    const a = item.asset
    const editable = canEdit(opts.role())
    thumb(li.querySelector<HTMLElement>('.asset-thumb')!, a)
    const name = li.querySelector<HTMLElement>('.asset-name')!
    name.textContent = a.name
    name.title = `${a.name} (${a.id})`
    li.querySelector('.asset-meta')!.textContent = `${typeWord(a)} · ${bytes(a.size)}${a.version > 1 ? ` · v${a.version}` : ''}`
    const usage = li.querySelector<HTMLElement>('.asset-usage')!
    usage.textContent = usageLine(a, item.refs)
    usage.dataset.usedBy = String(a.used_by)
    li.querySelector('.licence-text')!.textContent = licenceLine(a)
    li.querySelector<HTMLElement>('[data-act="licence"]')!.hidden = !editable
    const tags = li.querySelector<HTMLElement>('.asset-tags')!
    const html = a.tags.map((t) => `<span class="chip" data-tag="${escapeHtml(t)}">${escapeHtml(t)}${editable ? ` <button type="button" class="ghost" data-act="untag" aria-label="Remove the tag ${escapeHtml(t)}">×</button>` : ''}</span>`).join('')
    if (tags.dataset.html !== html) { tags.innerHTML = html; tags.dataset.html = html }
    li.querySelector<HTMLElement>('.tag-form')!.hidden = !editable
    li.querySelector<HTMLButtonElement>('[data-act="place"]')!.hidden = !a.content_type.startsWith('image/')
    li.querySelector<HTMLButtonElement>('[data-act="place"]')!.disabled = !editable
  }

  const render = (): void => {
    const prefix = search.value
    const items = shown.filter((s) => scope === 'library' || s.asset.name.startsWith(prefix))
    syncList(grid, items, (s) => s.asset.id, createCard, updateCard)
    empty.hidden = items.length > 0
    empty.textContent = loading !== null && shown.length === 0
      ? 'Loading the assets…'
      : scope === 'board' ? 'This board refers to no asset yet. Drop an image on the canvas.' : 'No assets yet. Upload one, or drop an image on the canvas.'
    storageLine.textContent = storage === null
      ? ''
      : `${storage.assets} ${storage.assets === 1 ? 'asset' : 'assets'} · ${bytes(storage.bytes)} stored of ${bytes(storage.quota_bytes)}`
  }

  const load = async (): Promise<void> => {
    const p = await opts.project()
    const filter = { prefix: search.value === '' ? undefined : search.value, content_type: imagesOnly.checked ? 'image/*' : undefined, limit: 60 }
    if (scope === 'library') {
      const [page, usage] = await Promise.all([api.list(p, filter), api.storage(p)])
      shown = page.assets.map((asset) => ({ asset }))
      storage = usage
    } else {
      const here = await api.documentAssets(p, opts.room)
      shown = here.assets
        .filter((x): x is { id: string, refs: number, asset: Asset } => x.asset !== null)
        .filter((x) => !imagesOnly.checked || x.asset.content_type.startsWith('image/'))
        .map((x) => ({ asset: x.asset, refs: x.refs }))
    }
  }

  const refresh = async (): Promise<void> => {
    if (loading !== null) return await loading
    loading = load().then(() => { if (errorBox.dataset.what === 'load') clearError() }, (err: unknown) => {
      showError('Loading the assets failed', err)
      errorBox.dataset.what = 'load'
    }).finally(() => { loading = null; render() })
    render()
    return await loading
  }

  // --- uploads from the panel --------------------------------------------------------------
  uploadButton.addEventListener('click', () => picker.click())
  picker.addEventListener('change', () => {
    for (const file of Array.from(picker.files ?? [])) opts.uploads.start(file, null, () => { void refresh() })
    picker.value = ''
  })
  const panelCards = new Map<number, HTMLElement>()
  opts.uploads.onChange(() => {
    const jobs = opts.uploads.jobs().filter((j) => j.at === null)
    const live = new Set(jobs.map((j) => j.id))
    for (const job of jobs) {
      let el = panelCards.get(job.id)
      if (el === undefined) { el = document.createElement('li'); uploadList.appendChild(el); panelCards.set(job.id, el) }
      renderJob(el, job, opts.uploads)
    }
    for (const [id, el] of panelCards) if (!live.has(id)) { el.remove(); panelCards.delete(id) }
    uploadList.hidden = jobs.length === 0
  })

  // --- filters and tabs ----------------------------------------------------------------------
  let typing = 0
  search.addEventListener('input', () => { clearTimeout(typing); typing = window.setTimeout(() => { void refresh() }, 250) })
  imagesOnly.addEventListener('change', () => { void refresh() })
  for (const tab of tabs) {
    tab.addEventListener('click', () => {
      scope = tab.dataset.scope === 'board' ? 'board' : 'library'
      for (const t of tabs) t.setAttribute('aria-selected', String(t === tab))
      shown = []
      void refresh()
    })
  }
  $('#assets-refresh').addEventListener('click', () => { void refresh() })

  const applyRole = (): void => {
    const ok = canEdit(opts.role())
    uploadButton.disabled = !ok
    uploadButton.title = ok ? 'Upload files to the library' : `Uploading needs an editor role; you are signed in as a ${opts.role()}.`
    readOnlyNote.hidden = ok
    readOnlyNote.textContent = ok ? '' : `You are signed in as a ${opts.role()}: you can look at the assets, not upload, tag or license them.`
    render()
  }

  const panel: LibraryPanel = {
    get isOpen () { return !host.hidden },
    open () {
      if (!host.hidden) return
      host.hidden = false
      document.body.classList.add('assets-open')
      void refresh()
      timer = window.setInterval(() => { if (!document.hidden) void refresh() }, POLL_MS)
      opts.onToggle?.()
    },
    close () {
      if (host.hidden) return
      host.hidden = true
      document.body.classList.remove('assets-open')
      clearInterval(timer)
      opts.onToggle?.()
    },
    toggle () { if (host.hidden) panel.open(); else panel.close() },
    refresh,
    assets: () => shown.map((s) => s.asset),
    showError,
    applyRole
  }
  $('#assets-close').addEventListener('click', () => panel.close())
  applyRole()
  return panel
}
