// A read-only look at another state of the board (a version, the session at an instant): the
// state, a Yjs update, is applied to a fresh Y.Doc and drawn by the same canvas renderer over
// the live canvas, until "Back to live". Nothing in it reaches the room.

import * as Y from 'yjs'
import type { Presence } from '../../src/index.js'
import { CanvasView, type Viewport } from './canvas.js'
import { Board, type EdgeData, type NodeData } from './model.js'

/** A button of the preview's bar. */
export interface PreviewAction {
  label: string
  run: () => void
  /** Why it is disabled; absent: enabled. */
  disabledReason?: string
}

/** What the preview shows, for scripts and tests. */
export interface PreviewState {
  title: string
  nodes: NodeData[]
  edges: EdgeData[]
}

/** A presence that shows no one: a preview has no collaborators. */
const nobody: Presence = {
  setUser () {},
  setCursor () {},
  setSelection () {},
  setField () {},
  local: () => ({}),
  peers: () => [],
  subscribe (fn) { fn([]); return () => {} },
  onCursors: () => () => {},
  destroy () {}
}

const $ = <T extends HTMLElement>(root: ParentNode, sel: string): T => {
  const el = root.querySelector<T>(sel)
  if (el === null) throw new Error(`missing ${sel}`)
  return el
}

/** The preview overlay in `host` (the `#preview` element of index.html). */
export class Preview {
  /** Called after the preview closed (by its button or by `close()`). */
  onClose: () => void = () => {}
  /** Resolves image nodes' asset URIs, as the live canvas does (frames only without it). */
  resolveImage: ((src: string) => Promise<string>) | null = null
  private shown: { doc: Y.Doc, board: Board, canvas: CanvasView, title: string, key: string } | null = null
  private readonly title: HTMLElement
  private readonly count: HTMLElement
  private readonly actions: HTMLElement
  private readonly stage: HTMLElement

  constructor (private readonly host: HTMLElement) {
    this.title = $(host, '#preview-title')
    this.count = $(host, '#preview-count')
    this.actions = $(host, '#preview-actions')
    this.stage = $(host, '#preview-stage')
    $(host, '#preview-close').addEventListener('click', () => this.close())
  }

  /** What is shown now: `key` names it (e.g. `version:3`), null when closed. */
  get key (): string | null {
    return this.shown?.key ?? null
  }

  /**
   * Shows the state `update` (a v1 Yjs update of a whole state) read-only, titled `title`.
   * `key` says what it is, so a caller can tell whether its preview is still the one shown.
   * `view`: `fit` the content (the default), `keep` the view of the preview shown now (to
   * scrub through a session without the board jumping), or start from the given viewport.
   */
  show (key: string, title: string, update: Uint8Array, { actions = [], view = 'fit' }: { actions?: PreviewAction[], view?: 'fit' | 'keep' | Viewport } = {}): PreviewState {
    const doc = new Y.Doc()
    Y.applyUpdate(doc, update)
    const board = new Board(doc)
    board.readOnly = true
    const previous = this.shown?.canvas.view
    this.teardown()
    this.host.hidden = false
    this.host.dataset.key = key
    const canvas = new CanvasView(this.stage, board, nobody)
    canvas.resolveImage = this.resolveImage
    if (view === 'keep' && previous !== undefined) canvas.view = { ...previous }
    else if (typeof view === 'object') {
      // A viewport of the live canvas, which fills the host: the bar above this stage shifts it.
      const shift = this.stage.getBoundingClientRect().top - this.host.getBoundingClientRect().top
      canvas.view = { ...view, y: view.y - shift }
    }
    else canvas.fit()
    canvas.render()
    this.shown = { doc, board, canvas, title, key }
    const nodes = board.nodeList()
    const edges = board.edgeList()
    this.title.textContent = title
    this.count.textContent = `${nodes.length} ${nodes.length === 1 ? 'node' : 'nodes'}, ${edges.length} ${edges.length === 1 ? 'edge' : 'edges'}`
    this.actions.replaceChildren(...actions.map((a) => {
      const b = document.createElement('button')
      b.type = 'button'
      b.textContent = a.label
      if (a.disabledReason !== undefined) {
        b.disabled = true
        b.title = a.disabledReason
      }
      b.addEventListener('click', a.run)
      return b
    }))
    return { title, nodes, edges }
  }

  /** The preview's content, or null when none is shown. */
  state (): PreviewState | null {
    if (this.shown === null) return null
    return { title: this.shown.title, nodes: this.shown.board.nodeList(), edges: this.shown.board.edgeList() }
  }

  /** Closes the preview and returns to the live board. */
  close (): void {
    if (this.shown === null) return
    this.teardown()
    this.host.hidden = true
    delete this.host.dataset.key
    this.onClose()
  }

  private teardown (): void {
    if (this.shown === null) return
    this.shown.canvas.destroy()
    this.shown.board.undo.destroy()
    this.shown.doc.destroy()
    this.shown = null
  }
}
