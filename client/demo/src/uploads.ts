// Uploads the board starts (files dropped on the canvas, or picked in the asset panel), each
// through the SDK's `api.assets.upload`: hashed, sent in one request or in parts, retried, and
// held while the browser is offline. A drop's progress is drawn where it was dropped, on the
// canvas; a panel upload's in the panel. When a dropped image is stored, it becomes an image
// node whose src is `tandemx://asset/<id>@<version>`.

import type { Asset, AssetRoutes, UploadProgress } from '../../src/index.js'
import type { CanvasView } from './canvas.js'
import { describeError, escapeHtml } from './ui.js'

/** One file on its way to the library. */
export interface UploadJob {
  readonly id: number
  readonly file: File
  /** Where it was dropped (world units); null for an upload from the panel. */
  readonly at: { x: number, y: number } | null
  phase: UploadProgress['phase'] | 'failed'
  loaded: number
  total: number
  error: string | null
  asset: Asset | null
}

/** The board's uploads. */
export interface Uploads {
  /** Starts uploading `file`; `done` runs with the stored asset. */
  start (file: File, at: { x: number, y: number } | null, done?: (asset: Asset) => void): UploadJob
  /** Uploads in progress, failed ones, and those just done. */
  jobs (): UploadJob[]
  cancel (id: number): void
  retry (id: number): void
  dismiss (id: number): void
  /** Every phase each upload went through (for scripts and tests). */
  history (): Array<{ id: number, name: string, phases: string[] }>
  onChange (fn: () => void): () => void
}

/** A finished upload's card stays this long, showing "Stored". */
const DONE_LINGER_MS = 1200

/** Byte counts in words. */
export function bytes (n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MB`
  return `${(n / 1024 ** 3).toFixed(2)} GB`
}

export function createUploads (api: AssetRoutes, project: () => Promise<string>): Uploads {
  const jobs = new Map<number, { job: UploadJob, ac: AbortController, done?: (asset: Asset) => void, phases: string[] }>()
  const history: Array<{ id: number, name: string, phases: string[] }> = []
  const listeners = new Set<() => void>()
  const notify = (): void => { for (const fn of [...listeners]) fn() }
  let seq = 0

  const run = (entry: { job: UploadJob, ac: AbortController, done?: (asset: Asset) => void, phases: string[] }): void => {
    const { job } = entry
    const mark = (phase: UploadJob['phase']): void => {
      if (entry.phases.at(-1) !== phase) entry.phases.push(phase)
      job.phase = phase
    }
    void (async () => {
      try {
        const asset = await api.upload(await project(), job.file, {
          signal: entry.ac.signal,
          onProgress: (p) => {
            mark(p.phase)
            job.loaded = p.loaded
            job.total = p.total
            notify()
          }
        })
        job.asset = asset
        mark('done')
        notify()
        entry.done?.(asset)
        setTimeout(() => { jobs.delete(job.id); notify() }, DONE_LINGER_MS)
      } catch (err) {
        if (entry.ac.signal.aborted) {
          jobs.delete(job.id)
        } else {
          mark('failed')
          job.error = describeError(err)
        }
        notify()
      }
    })()
  }

  return {
    start (file, at, done) {
      const job: UploadJob = { id: ++seq, file, at, phase: 'hashing', loaded: 0, total: file.size, error: null, asset: null }
      const entry = { job, ac: new AbortController(), done, phases: [] as string[] }
      jobs.set(job.id, entry)
      history.push({ id: job.id, name: file.name, phases: entry.phases })
      notify()
      run(entry)
      return job
    },
    jobs: () => [...jobs.values()].map((e) => e.job),
    cancel (id) { jobs.get(id)?.ac.abort() },
    retry (id) {
      const entry = jobs.get(id)
      if (entry === undefined || entry.job.phase !== 'failed') return
      entry.ac = new AbortController()
      entry.job.error = null
      entry.job.loaded = 0
      run(entry)
      notify()
    },
    dismiss (id) { jobs.delete(id); notify() },
    history: () => history.map((h) => ({ ...h, phases: [...h.phases] })),
    onChange (fn) { listeners.add(fn); return () => { listeners.delete(fn) } }
  }
}

/** What a job's card says. */
function statusLine (job: UploadJob): string {
  const pct = job.total > 0 ? Math.floor((job.loaded / job.total) * 100) : 0
  switch (job.phase) {
    case 'hashing': return `Reading the file… ${pct}%`
    case 'uploading': return `Uploading ${pct}% · ${bytes(job.loaded)} of ${bytes(job.total)}`
    case 'offline': return 'Offline · waiting for the network to go on'
    case 'done': return job.asset?.deduplicated === true ? 'Stored (the library had these bytes already)' : 'Stored'
    case 'failed': return `Failed: ${job.error ?? ''}`
  }
}

/** Fills (or refreshes) the card of `job` in `el`; its buttons call `uploads`. */
export function renderJob (el: HTMLElement, job: UploadJob, uploads: Uploads): void {
  const pct = job.phase === 'done' ? 100 : job.total > 0 ? Math.floor((job.loaded / job.total) * 100) : 0
  el.className = 'upload-card'
  el.dataset.upload = String(job.id)
  el.dataset.phase = job.phase
  if (el.childElementCount === 0) {
    el.innerHTML = `<div class="upload-name"></div><div class="upload-bar" role="progressbar" aria-valuemin="0" aria-valuemax="100"><span></span></div>` +
      '<div class="upload-foot"><span class="upload-status"></span><span class="upload-actions"></span></div>'
  }
  const name = el.querySelector<HTMLElement>('.upload-name')!
  name.textContent = job.file.name
  name.title = `${job.file.name} · ${bytes(job.file.size)}`
  const bar = el.querySelector<HTMLElement>('.upload-bar')!
  bar.setAttribute('aria-valuenow', String(pct))
  bar.setAttribute('aria-label', `Uploading ${job.file.name}`)
  bar.querySelector('span')!.style.width = `${pct}%`
  el.querySelector('.upload-status')!.textContent = statusLine(job)
  const actions = el.querySelector<HTMLElement>('.upload-actions')!
  const wanted = job.phase === 'failed' ? 'retry,dismiss' : job.phase === 'done' ? '' : 'cancel'
  if (actions.dataset.buttons !== wanted) {
    actions.dataset.buttons = wanted
    actions.innerHTML = wanted.split(',').filter((b) => b !== '').map((b) => `<button type="button" class="ghost" data-act="${b}">${escapeHtml(b[0].toUpperCase() + b.slice(1))}</button>`).join('')
    for (const b of actions.querySelectorAll<HTMLButtonElement>('button')) {
      b.addEventListener('click', (ev) => {
        ev.stopPropagation()
        const act = b.dataset.act
        if (act === 'cancel') uploads.cancel(job.id)
        else if (act === 'retry') uploads.retry(job.id)
        else uploads.dismiss(job.id)
      })
    }
  }
}

/** Draws the cards of dropped files at their drop points, following pan and zoom. */
export function mountUploadCards (host: HTMLElement, canvas: CanvasView, uploads: Uploads): void {
  const cards = new Map<number, HTMLElement>()
  const draw = (): void => {
    const live = new Set<number>()
    for (const job of uploads.jobs()) {
      if (job.at === null) continue
      live.add(job.id)
      let el = cards.get(job.id)
      if (el === undefined) {
        el = document.createElement('div')
        host.appendChild(el)
        cards.set(job.id, el)
      }
      renderJob(el, job, uploads)
      const { x, y, k } = canvas.view
      el.style.transform = `translate(${job.at.x * k + x}px, ${job.at.y * k + y}px) translate(-50%, -50%)`
    }
    for (const [id, el] of cards) if (!live.has(id)) { el.remove(); cards.delete(id) }
  }
  uploads.onChange(draw)
  const previous = canvas.onViewChange
  canvas.onViewChange = () => { previous(); draw() }
}
