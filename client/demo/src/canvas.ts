// The infinite canvas: renders the board's nodes and edges in an SVG with pan and zoom, and
// turns pointer and keyboard input into board edits. Collaborators' cursors and selections are
// drawn from presence. Image nodes show an asset, their `tandemx://asset/…` URI resolved to a
// signed URL by `resolveImage`; files dropped on the canvas go to `onFilesDrop`.

import type { Peer, Presence } from '../../src/index.js'
import { Board, NODE_H, NODE_W, type EdgeData, type NodeData, type NodeKind } from './model.js'

const SVG_NS = 'http://www.w3.org/2000/svg'
const MIN_ZOOM = 0.2
const MAX_ZOOM = 3

/** Colour of each node kind (its band, icon and minimap dot). */
export const KIND_COLOR: Record<NodeKind, string> = {
  service: '#2e6fd8',
  database: '#2f9e44',
  cache: '#e8590c',
  queue: '#9c36b5',
  image: '#0b7285'
}

/** The visible part of the world: screen = world * k + (x, y). */
export interface Viewport {
  x: number
  y: number
  k: number
}

function svg<K extends keyof SVGElementTagNameMap> (tag: K, attrs: Record<string, string | number> = {}, parent?: Element): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag)
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value))
  if (parent !== undefined) parent.appendChild(el)
  return el
}

/** The outline of a node of `kind` at the origin, NODE_W x NODE_H. */
function shapeFor (kind: NodeKind, parent: SVGGElement): SVGElement {
  if (kind === 'database') {
    const rx = NODE_W / 2
    const ry = 9
    const body = svg('path', {
      class: 'shape',
      d: `M0,${ry} a${rx},${ry} 0 0,0 ${NODE_W},0 a${rx},${ry} 0 0,0 ${-NODE_W},0 v${NODE_H - 2 * ry} a${rx},${ry} 0 0,0 ${NODE_W},0 v${-(NODE_H - 2 * ry)}`
    }, parent)
    return body
  }
  const shape = svg('rect', { class: 'shape', width: NODE_W, height: NODE_H, rx: kind === 'queue' ? 4 : 12 }, parent)
  if (kind === 'queue') {
    for (let i = 0; i < 3; i++) svg('line', { class: 'deco', x1: NODE_W - 14 - i * 9, y1: 10, x2: NODE_W - 14 - i * 9, y2: NODE_H - 10 }, parent)
  }
  if (kind === 'cache') {
    svg('path', { class: 'deco bolt', d: `M${NODE_W - 22},12 l-8,22 h8 l-5,18 l14,-24 h-8 l6,-16 z` }, parent)
  }
  return shape
}

/** Where the segment from the centre of `a` towards the centre of `b` leaves `a`'s box. */
function borderPoint (a: NodeData, b: NodeData, pad = 4): { x: number, y: number } {
  const cx = a.x + a.w / 2
  const cy = a.y + a.h / 2
  const dx = b.x + b.w / 2 - cx
  const dy = b.y + b.h / 2 - cy
  if (dx === 0 && dy === 0) return { x: cx, y: cy }
  const sx = (a.w / 2 + pad) / Math.abs(dx || 1e-9)
  const sy = (a.h / 2 + pad) / Math.abs(dy || 1e-9)
  const s = Math.min(sx, sy)
  return { x: cx + dx * s, y: cy + dy * s }
}

interface NodeEls {
  g: SVGGElement
  kind: NodeKind
  label: SVGTextElement
  /** Image nodes: the picture, the URI it was resolved for, the size drawn. */
  image?: { img: HTMLImageElement, frame: SVGRectElement, box: SVGForeignObjectElement, port: SVGCircleElement, src: string | null, w: number, h: number }
}

const HTML_NS = 'http://www.w3.org/1999/xhtml'

/** The canvas view of one board. */
export class CanvasView {
  readonly svg: SVGSVGElement
  view: Viewport = { x: 0, y: 0, k: 1 }
  readonly selectedNodes = new Set<string>()
  selectedEdge: string | null = null
  /** Called after the viewport or the content changed (the minimap listens). */
  onViewChange: () => void = () => {}
  /** Called when the local selection changed. */
  onSelectionChange: () => void = () => {}
  /**
   * Called, while the comment tool is on, for a click on the canvas: the world point, and the
   * node clicked (null on the background). Such a click neither selects nor pans.
   */
  onCommentClick: (at: { x: number, y: number }, node: string | null) => void = () => {}
  /** Called for files dropped on the canvas, with the world point they were dropped at. */
  onFilesDrop: (files: File[], at: { x: number, y: number }) => void = () => {}
  private commenting = false
  private resolver: ((src: string) => Promise<string>) | null = null

  private readonly world: SVGGElement
  private readonly edgeLayer: SVGGElement
  private readonly haloLayer: SVGGElement
  private readonly nodeLayer: SVGGElement
  private readonly cursorLayer: SVGGElement
  private readonly ghost: SVGLineElement
  private readonly nodeEls = new Map<string, NodeEls>()
  private readonly edgeEls = new Map<string, SVGGElement>()
  private nodes = new Map<string, NodeData>()
  private peers: Peer[] = []
  private editor: HTMLInputElement | null = null
  private frame = 0
  private readonly cleanups: (() => void)[] = []

  constructor (
    private readonly host: HTMLElement,
    private readonly board: Board,
    private readonly presence: Presence
  ) {
    this.svg = svg('svg', { class: 'canvas', 'aria-label': 'canvas' })
    const defs = svg('defs', {}, this.svg)
    const marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, defs)
    svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }, marker)
    const grid = svg('pattern', { id: 'grid', width: 24, height: 24, patternUnits: 'userSpaceOnUse' }, defs)
    svg('circle', { cx: 1, cy: 1, r: 1, class: 'grid-dot' }, grid)
    this.world = svg('g', { class: 'world' }, this.svg)
    svg('rect', { class: 'grid', x: -50000, y: -50000, width: 100000, height: 100000, fill: 'url(#grid)' }, this.world)
    this.edgeLayer = svg('g', { class: 'edges' }, this.world)
    this.haloLayer = svg('g', { class: 'halos' }, this.world)
    this.nodeLayer = svg('g', { class: 'nodes' }, this.world)
    this.ghost = svg('line', { class: 'ghost', visibility: 'hidden' }, this.world)
    this.cursorLayer = svg('g', { class: 'cursors' }, this.svg)
    host.appendChild(this.svg)

    this.cleanups.push(board.observe(() => this.schedule()))
    this.cleanups.push(presence.subscribe((peers) => { this.peers = peers; this.schedule() }))
    this.bindInput()
    const resize = new ResizeObserver(() => this.schedule())
    resize.observe(host)
    this.cleanups.push(() => resize.disconnect())
    this.render()
  }

  // --- coordinates ---------------------------------------------------------------------------

  /** World coordinates of a client (screen) point. */
  toWorld (clientX: number, clientY: number): { x: number, y: number } {
    const r = this.svg.getBoundingClientRect()
    return { x: (clientX - r.left - this.view.x) / this.view.k, y: (clientY - r.top - this.view.y) / this.view.k }
  }

  /** The world point at the centre of the visible area. */
  center (): { x: number, y: number } {
    const r = this.svg.getBoundingClientRect()
    return this.toWorld(r.left + r.width / 2, r.top + r.height / 2)
  }

  /** The visible world rectangle. */
  visibleWorld (): { x: number, y: number, w: number, h: number } {
    const r = this.svg.getBoundingClientRect()
    return { x: -this.view.x / this.view.k, y: -this.view.y / this.view.k, w: r.width / this.view.k, h: r.height / this.view.k }
  }

  /** Centres the view on a world point. */
  centerOn (x: number, y: number): void {
    const r = this.svg.getBoundingClientRect()
    this.view = { ...this.view, x: r.width / 2 - x * this.view.k, y: r.height / 2 - y * this.view.k }
    this.schedule()
  }

  /** Zooms by `factor` around a client point (the centre by default). */
  zoom (factor: number, clientX?: number, clientY?: number): void {
    const r = this.svg.getBoundingClientRect()
    const px = (clientX ?? r.left + r.width / 2) - r.left
    const py = (clientY ?? r.top + r.height / 2) - r.top
    const k = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, this.view.k * factor))
    const wx = (px - this.view.x) / this.view.k
    const wy = (py - this.view.y) / this.view.k
    this.view = { k, x: px - wx * k, y: py - wy * k }
    this.schedule()
  }

  /** Fits every node in view (or centres the origin on an empty board). */
  fit (): void {
    const list = [...this.nodes.values()]
    const r = this.svg.getBoundingClientRect()
    if (list.length === 0 || r.width === 0) {
      this.view = { x: r.width / 2, y: r.height / 2, k: 1 }
      this.schedule()
      return
    }
    const minX = Math.min(...list.map((n) => n.x)) - 60
    const minY = Math.min(...list.map((n) => n.y)) - 60
    const maxX = Math.max(...list.map((n) => n.x + n.w)) + 60
    const maxY = Math.max(...list.map((n) => n.y + n.h)) + 60
    const k = Math.min(1.25, Math.max(MIN_ZOOM, Math.min(r.width / (maxX - minX), r.height / (maxY - minY))))
    this.view = { k, x: (r.width - (maxX - minX) * k) / 2 - minX * k, y: (r.height - (maxY - minY) * k) / 2 - minY * k }
    this.schedule()
  }

  /**
   * Turns an image node's `src` (an asset URI) into a URL an `<img>` loads. Without one (a
   * preview), image nodes show their frame and name only.
   */
  set resolveImage (fn: ((src: string) => Promise<string>) | null) {
    this.resolver = fn
    this.schedule()
  }

  /** Whether the comment tool is on (clicks place comments instead of selecting or panning). */
  get commentMode (): boolean {
    return this.commenting
  }

  set commentMode (on: boolean) {
    this.commenting = on
    this.svg.classList.toggle('commenting', on)
  }

  // --- rendering -----------------------------------------------------------------------------

  /** Renders on the next animation frame (many changes, one render). */
  schedule (): void {
    if (this.frame !== 0) return
    this.frame = requestAnimationFrame(() => {
      this.frame = 0
      this.render()
    })
  }

  /** Renders now. */
  render (): void {
    this.nodes = new Map(this.board.nodeList().map((n) => [n.id, n]))
    for (const id of [...this.selectedNodes]) if (!this.nodes.has(id)) this.selectedNodes.delete(id)
    const edges = this.board.edgeList()
    if (this.selectedEdge !== null && !edges.some((e) => e.id === this.selectedEdge)) this.selectedEdge = null
    this.world.setAttribute('transform', `translate(${this.view.x} ${this.view.y}) scale(${this.view.k})`)
    this.renderEdges(edges)
    this.renderNodes()
    this.renderHalos()
    this.renderCursors()
    this.onViewChange()
  }

  private renderNodes (): void {
    for (const [id, els] of this.nodeEls) {
      const node = this.nodes.get(id)
      if (node === undefined || node.kind !== els.kind) {
        els.g.remove()
        this.nodeEls.delete(id)
      }
    }
    for (const node of this.nodes.values()) {
      let els = this.nodeEls.get(node.id)
      if (els === undefined && node.kind === 'image') {
        els = this.createImageNode(node)
        this.nodeEls.set(node.id, els)
      } else if (els === undefined) {
        const g = svg('g', { class: `node kind-${node.kind}`, 'data-id': node.id }, this.nodeLayer)
        shapeFor(node.kind, g)
        // The cylinder's top takes room: its text sits a little lower and has no side band.
        const dy = node.kind === 'database' ? 5 : 0
        if (node.kind !== 'database') svg('rect', { class: 'band', x: 0, y: 14, width: 4, height: NODE_H - 28, rx: 2, fill: KIND_COLOR[node.kind] }, g)
        const kind = svg('text', { class: 'kind', x: 16, y: 24 + dy, fill: KIND_COLOR[node.kind] }, g)
        kind.textContent = node.kind.toUpperCase()
        const label = svg('text', { class: 'label', x: 16, y: 44 + dy }, g)
        svg('circle', { class: 'port', cx: NODE_W, cy: NODE_H / 2, r: 7 }, g).appendChild(svg('title')).textContent = 'Drag to connect'
        els = { g, kind: node.kind, label }
        this.nodeEls.set(node.id, els)
      }
      els.g.setAttribute('transform', `translate(${node.x} ${node.y})`)
      if (els.image !== undefined) this.updateImageNode(els, node)
      const max = Math.max(8, Math.floor(node.w / 8.4))
      const shown = node.label.length > max ? `${node.label.slice(0, max - 1)}…` : node.label
      if (els.label.textContent !== shown) els.label.textContent = shown
      els.g.classList.toggle('selected', this.selectedNodes.has(node.id))
    }
  }

  /** An image node: a frame, the picture (an HTML `<img>`, so it has a naturalWidth), its name. */
  private createImageNode (node: NodeData): NodeEls {
    const g = svg('g', { class: 'node kind-image loading', 'data-id': node.id }, this.nodeLayer)
    const frame = svg('rect', { class: 'shape', rx: 8 }, g)
    const box = svg('foreignObject', { class: 'picture', x: 0, y: 0 }, g)
    const img = document.createElementNS(HTML_NS, 'img') as HTMLImageElement
    img.draggable = false
    img.alt = node.label
    img.addEventListener('load', () => { g.classList.remove('loading', 'broken') })
    img.addEventListener('error', () => { if (img.getAttribute('src') !== null) { g.classList.remove('loading'); g.classList.add('broken') } })
    box.appendChild(img)
    const label = svg('text', { class: 'label caption', x: 4 }, g)
    const port = svg('circle', { class: 'port', r: 7 }, g)
    port.appendChild(svg('title')).textContent = 'Drag to connect'
    return { g, kind: 'image', label, image: { img, frame, box, port, src: null, w: 0, h: 0 } }
  }

  private updateImageNode (els: NodeEls, node: NodeData): void {
    const im = els.image
    if (im === undefined) return
    if (im.w !== node.w || im.h !== node.h) {
      im.w = node.w
      im.h = node.h
      for (const el of [im.frame, im.box]) {
        el.setAttribute('width', String(node.w))
        el.setAttribute('height', String(node.h))
      }
      els.label.setAttribute('y', String(node.h + 17))
      im.port.setAttribute('cx', String(node.w))
      im.port.setAttribute('cy', String(node.h / 2))
    }
    const src = node.src ?? ''
    if (im.src === src || this.resolver === null) return
    im.src = src
    im.img.alt = node.label
    im.img.removeAttribute('src')
    els.g.classList.add('loading')
    els.g.classList.remove('broken')
    this.resolver(src).then((url) => {
      if (im.src === src) im.img.src = url
    }, () => {
      if (im.src !== src) return
      els.g.classList.remove('loading')
      els.g.classList.add('broken')
    })
  }

  private renderEdges (edges: EdgeData[]): void {
    const live = new Set(edges.map((e) => e.id))
    for (const [id, g] of this.edgeEls) {
      if (!live.has(id)) {
        g.remove()
        this.edgeEls.delete(id)
      }
    }
    for (const e of edges) {
      const a = this.nodes.get(e.from)
      const b = this.nodes.get(e.to)
      if (a === undefined || b === undefined) continue
      let g = this.edgeEls.get(e.id)
      if (g === undefined) {
        g = svg('g', { class: 'edge', 'data-edge': e.id }, this.edgeLayer)
        svg('line', { class: 'hit' }, g)
        svg('line', { class: 'wire', 'marker-end': 'url(#arrow)' }, g)
        this.edgeEls.set(e.id, g)
      }
      const p = borderPoint(a, b)
      const q = borderPoint(b, a, 6)
      for (const line of Array.from(g.children)) {
        line.setAttribute('x1', String(p.x))
        line.setAttribute('y1', String(p.y))
        line.setAttribute('x2', String(q.x))
        line.setAttribute('y2', String(q.y))
      }
      g.classList.toggle('selected', this.selectedEdge === e.id)
    }
  }

  /** Collaborators' selections: a halo in their colour with their name. */
  private renderHalos (): void {
    this.haloLayer.replaceChildren()
    for (const peer of this.peers) {
      for (const id of peer.selection ?? []) {
        const n = this.nodes.get(id)
        if (n === undefined) continue
        svg('rect', { class: 'halo', x: n.x - 6, y: n.y - 6, width: n.w + 12, height: n.h + 12, rx: 16, stroke: peer.user.color }, this.haloLayer)
        const tag = svg('text', { class: 'halo-name', x: n.x - 4, y: n.y - 11, fill: peer.user.color }, this.haloLayer)
        tag.textContent = peer.user.name
      }
    }
  }

  /** Collaborators' cursors, in screen space so they keep their size at any zoom. */
  private renderCursors (): void {
    this.cursorLayer.replaceChildren()
    for (const peer of this.peers) {
      if (peer.cursor === null) continue
      const x = peer.cursor.x * this.view.k + this.view.x
      const y = peer.cursor.y * this.view.k + this.view.y
      const g = svg('g', { class: 'cursor', transform: `translate(${x} ${y})`, 'data-client': peer.clientId }, this.cursorLayer)
      svg('path', { d: 'M0,0 L0,17 L4.5,13 L8,21 L11,19.5 L7.5,12 L13,12 z', fill: peer.user.color }, g)
      const name = peer.user.name.slice(0, 24)
      const w = 12 + name.length * 7
      svg('rect', { x: 12, y: 18, width: w, height: 20, rx: 6, fill: peer.user.color }, g)
      const text = svg('text', { x: 18, y: 32 }, g)
      text.textContent = name
    }
  }

  // --- input ---------------------------------------------------------------------------------

  private setSelection (nodes: Iterable<string>, edge: string | null = null): void {
    this.selectedNodes.clear()
    for (const id of nodes) this.selectedNodes.add(id)
    this.selectedEdge = edge
    this.presence.setSelection(this.selectedNodes.size > 0 ? [...this.selectedNodes] : null)
    this.onSelectionChange()
    this.schedule()
  }

  /** Selects exactly these nodes. */
  select (ids: string[]): void {
    this.setSelection(ids)
  }

  /** Deletes the selected nodes and edge. */
  deleteSelection (): void {
    if (this.selectedNodes.size === 0 && this.selectedEdge === null) return
    this.board.delete([...this.selectedNodes], this.selectedEdge !== null ? [this.selectedEdge] : [])
    this.setSelection([])
  }

  /** Opens the inline editor on a node's label. */
  rename (id: string): void {
    const node = this.nodes.get(id)
    if (node === undefined || this.board.readOnly) return
    this.editor?.remove()
    const input = document.createElement('input')
    input.className = 'rename'
    input.value = node.label
    input.setAttribute('aria-label', 'Node name')
    const k = this.view.k
    Object.assign(input.style, {
      left: `${node.x * k + this.view.x + 12 * k}px`,
      top: `${(node.kind === 'image' ? node.y + node.h + 2 : node.y + 30) * k + this.view.y}px`,
      width: `${(node.w - 24) * k}px`,
      fontSize: `${15 * k}px`
    })
    let done = false
    const finish = (commit: boolean): void => {
      if (done) return
      done = true
      if (commit) this.board.rename(id, input.value)
      input.remove()
      this.editor = null
    }
    input.addEventListener('keydown', (ev) => {
      ev.stopPropagation()
      if (ev.key === 'Enter') finish(true)
      if (ev.key === 'Escape') finish(false)
    })
    input.addEventListener('blur', () => finish(true))
    this.host.appendChild(input)
    this.editor = input
    input.focus()
    input.select()
  }

  private bindInput (): void {
    const el = this.svg
    type Drag =
      | { kind: 'pan', x: number, y: number, vx: number, vy: number }
      | { kind: 'move', start: { x: number, y: number }, origins: Map<string, { x: number, y: number }> }
      | { kind: 'link', from: string }
    let drag: Drag | null = null
    let pendingMove: { x: number, y: number } | null = null
    let moveFrame = 0

    const applyMove = (): void => {
      moveFrame = 0
      if (drag?.kind !== 'move' || pendingMove === null) return
      const dx = pendingMove.x - drag.start.x
      const dy = pendingMove.y - drag.start.y
      this.board.moveNodes([...drag.origins].map(([id, o]) => ({ id, x: o.x + dx, y: o.y + dy })))
    }

    el.addEventListener('pointerdown', (ev) => {
      if (ev.button !== 0 && ev.button !== 1) return
      this.editor?.blur()
      const target = ev.target as Element
      const nodeEl = target.closest('.node')
      const edgeEl = target.closest('.edge')
      const p = this.toWorld(ev.clientX, ev.clientY)
      if (this.commenting && ev.button === 0) {
        ev.preventDefault()
        this.onCommentClick({ x: Math.round(p.x), y: Math.round(p.y) }, nodeEl?.getAttribute('data-id') ?? null)
        return
      }
      if (ev.button === 0 && target.classList.contains('port') && nodeEl !== null && !this.board.readOnly) {
        drag = { kind: 'link', from: nodeEl.getAttribute('data-id') ?? '' }
        this.ghost.setAttribute('visibility', 'visible')
        this.updateGhost(drag.from, p)
      } else if (ev.button === 0 && nodeEl !== null) {
        const id = nodeEl.getAttribute('data-id') ?? ''
        if (ev.shiftKey) {
          const next = new Set(this.selectedNodes)
          if (next.has(id)) next.delete(id)
          else next.add(id)
          this.setSelection(next)
        } else if (!this.selectedNodes.has(id)) {
          this.setSelection([id])
        }
        if (!this.board.readOnly && this.selectedNodes.has(id)) {
          const origins = new Map<string, { x: number, y: number }>()
          for (const sid of this.selectedNodes) {
            const n = this.nodes.get(sid)
            if (n !== undefined) origins.set(sid, { x: n.x, y: n.y })
          }
          this.board.boundary()
          drag = { kind: 'move', start: p, origins }
        }
      } else if (ev.button === 0 && edgeEl !== null) {
        this.setSelection([], edgeEl.getAttribute('data-edge'))
      } else {
        if (!ev.shiftKey && ev.button === 0) this.setSelection([])
        drag = { kind: 'pan', x: ev.clientX, y: ev.clientY, vx: this.view.x, vy: this.view.y }
        el.classList.add('panning')
      }
    })

    // Drags follow the pointer on the window (no pointer capture: it would retarget dblclick).
    el.addEventListener('pointermove', (ev) => {
      const p = this.toWorld(ev.clientX, ev.clientY)
      this.presence.setCursor({ x: Math.round(p.x), y: Math.round(p.y) })
    })
    const onMove = (ev: PointerEvent): void => {
      if (drag === null) return
      const p = this.toWorld(ev.clientX, ev.clientY)
      if (drag.kind === 'pan') {
        this.view = { ...this.view, x: drag.vx + ev.clientX - drag.x, y: drag.vy + ev.clientY - drag.y }
        this.schedule()
      } else if (drag.kind === 'move') {
        pendingMove = p
        if (moveFrame === 0) moveFrame = requestAnimationFrame(applyMove)
      } else {
        this.updateGhost(drag.from, p)
      }
    }

    const end = (ev: PointerEvent): void => {
      if (drag?.kind === 'move') {
        if (moveFrame !== 0) cancelAnimationFrame(moveFrame)
        applyMove()
        this.board.boundary()
      } else if (drag?.kind === 'link') {
        this.ghost.setAttribute('visibility', 'hidden')
        const under = document.elementFromPoint(ev.clientX, ev.clientY)?.closest('.node')
        const to = under?.getAttribute('data-id')
        if (to !== undefined && to !== null) this.board.connect(drag.from, to)
      }
      drag = null
      pendingMove = null
      el.classList.remove('panning')
    }
    window.addEventListener('pointermove', onMove)
    window.addEventListener('pointerup', end)
    window.addEventListener('pointercancel', end)
    this.cleanups.push(() => {
      window.removeEventListener('pointermove', onMove)
      window.removeEventListener('pointerup', end)
      window.removeEventListener('pointercancel', end)
    })
    el.addEventListener('pointerleave', () => this.presence.setCursor(null))

    el.addEventListener('dblclick', (ev) => {
      if (this.commenting) return
      const nodeEl = (ev.target as Element).closest('.node')
      if (nodeEl !== null) {
        this.rename(nodeEl.getAttribute('data-id') ?? '')
      } else if (!this.board.readOnly) {
        const p = this.toWorld(ev.clientX, ev.clientY)
        const id = this.board.addNode('service', p.x, p.y)
        this.setSelection([id])
      }
    })

    // Files dragged in from the desktop: the canvas takes them where they are dropped.
    const carriesFiles = (ev: DragEvent): boolean => ev.dataTransfer?.types.includes('Files') === true
    el.addEventListener('dragover', (ev) => {
      if (!carriesFiles(ev)) return
      ev.preventDefault()
      if (ev.dataTransfer !== null) ev.dataTransfer.dropEffect = this.board.readOnly ? 'none' : 'copy'
      el.classList.add('dropping')
    })
    el.addEventListener('dragleave', () => el.classList.remove('dropping'))
    el.addEventListener('drop', (ev) => {
      el.classList.remove('dropping')
      const files = Array.from(ev.dataTransfer?.files ?? [])
      if (files.length === 0) return
      ev.preventDefault()
      const p = this.toWorld(ev.clientX, ev.clientY)
      this.onFilesDrop(files, { x: Math.round(p.x), y: Math.round(p.y) })
    })

    el.addEventListener('wheel', (ev) => {
      ev.preventDefault()
      if (ev.ctrlKey || ev.metaKey || Math.abs(ev.deltaY) >= Math.abs(ev.deltaX)) {
        this.zoom(Math.exp(-ev.deltaY * (ev.ctrlKey ? 0.01 : 0.0015)), ev.clientX, ev.clientY)
      } else {
        this.view = { ...this.view, x: this.view.x - ev.deltaX, y: this.view.y - ev.deltaY }
        this.schedule()
      }
    }, { passive: false })

    const onKey = (ev: KeyboardEvent): void => {
      const t = ev.target as HTMLElement | null
      if (t !== null && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA')) return
      const mod = ev.ctrlKey || ev.metaKey
      if (mod && ev.key.toLowerCase() === 'z') {
        ev.preventDefault()
        if (ev.shiftKey) this.board.undo.redo()
        else this.board.undo.undo()
      } else if (mod && ev.key.toLowerCase() === 'y') {
        ev.preventDefault()
        this.board.undo.redo()
      } else if (ev.key === 'Delete' || ev.key === 'Backspace') {
        if (!this.board.readOnly) this.deleteSelection()
      } else if (ev.key === 'Escape') {
        this.setSelection([])
      } else if (ev.key === 'Enter' && this.selectedNodes.size === 1) {
        ev.preventDefault()
        this.rename([...this.selectedNodes][0])
      }
    }
    window.addEventListener('keydown', onKey)
    this.cleanups.push(() => window.removeEventListener('keydown', onKey))
  }

  private updateGhost (from: string, p: { x: number, y: number }): void {
    const n = this.nodes.get(from)
    if (n === undefined) return
    this.ghost.setAttribute('x1', String(n.x + n.w))
    this.ghost.setAttribute('y1', String(n.y + n.h / 2))
    this.ghost.setAttribute('x2', String(p.x))
    this.ghost.setAttribute('y2', String(p.y))
  }

  /** Node data by id, as last rendered. */
  node (id: string): NodeData | undefined {
    return this.nodes.get(id)
  }

  /** All nodes as last rendered. */
  nodeList (): NodeData[] {
    return [...this.nodes.values()]
  }

  /** Stops listening and removes the SVG. */
  destroy (): void {
    if (this.frame !== 0) cancelAnimationFrame(this.frame)
    for (const off of this.cleanups.splice(0)) off()
    this.svg.remove()
  }
}
