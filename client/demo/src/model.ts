// The shared canvas: nodes and edges in the room's Y.Doc, and per-user undo.
//
// Layout (so any client, or a server-side script, can read it):
//   doc.getMap('nodes'): id -> Y.Map { kind, label, x, y }   one Y.Map per node, so concurrent
//                                                             moves and renames merge per field;
//                        image nodes add { src, w, h }:       src is `tandemx://asset/<id>@<v>`
//   doc.getMap('edges'): id -> { from, to }                  edges never change, only come and go

import * as Y from 'yjs'

/** What a node stands for in a system diagram, or a picture placed on the canvas. */
export type NodeKind = 'service' | 'database' | 'cache' | 'queue' | 'image'

/** The kinds the toolbar adds, in its order (images come by drag and drop). */
export const NODE_KINDS: Array<Exclude<NodeKind, 'image'>> = ['service', 'database', 'cache', 'queue']
const ALL_KINDS: NodeKind[] = [...NODE_KINDS, 'image']

/** A node as plain data. */
export interface NodeData {
  id: string
  kind: NodeKind
  label: string
  x: number
  y: number
  /** Size in world units (NODE_W x NODE_H but for images). */
  w: number
  h: number
  /** An image node's picture: an asset URI (`tandemx://asset/<id>@<version>`). */
  src?: string
}

/** A directed edge as plain data. */
export interface EdgeData {
  id: string
  from: string
  to: string
}

/** Node size in world units. */
export const NODE_W = 168
export const NODE_H = 64
/** Largest size an image node is given when placed (it keeps the picture's proportions). */
export const IMAGE_MAX_W = 240
export const IMAGE_MAX_H = 180

const DEFAULT_LABEL: Record<NodeKind, string> = {
  service: 'Service',
  database: 'Database',
  cache: 'Cache',
  queue: 'Queue',
  image: 'Image'
}

/** The size an image of `width` x `height` pixels gets on the canvas. */
export function imageBox (width: number, height: number): { w: number, h: number } {
  if (!(width > 0 && height > 0)) return { w: IMAGE_MAX_W, h: Math.round(IMAGE_MAX_W * 3 / 4) }
  const k = Math.min(1, IMAGE_MAX_W / width, IMAGE_MAX_H / height)
  return { w: Math.max(48, Math.round(width * k)), h: Math.max(36, Math.round(height * k)) }
}

/** The canvas of one room. Edits go through here, so undo sees exactly the local user's. */
export class Board {
  readonly nodes: Y.Map<Y.Map<unknown>>
  readonly edges: Y.Map<{ from: string, to: string }>
  readonly undo: Y.UndoManager
  /** When set, the mutators do nothing (viewers and commenters). */
  readOnly = false
  private seq = 0

  constructor (readonly doc: Y.Doc) {
    this.nodes = doc.getMap('nodes')
    this.edges = doc.getMap('edges')
    // Only this Board's transactions are tracked: undo never reverts a collaborator's work.
    this.undo = new Y.UndoManager([this.nodes, this.edges], { trackedOrigins: new Set([this]), captureTimeout: 400 })
  }

  /** Runs `fn` as one local, undoable transaction. */
  private change (fn: () => void): void {
    if (this.readOnly) return
    this.doc.transact(fn, this)
  }

  private newId (): string {
    return `${this.doc.clientID.toString(36)}-${(++this.seq).toString(36)}-${Math.random().toString(36).slice(2, 6)}`
  }

  /** Adds a node centred at (x, y); returns its id ('' when read-only). */
  addNode (kind: NodeKind, x: number, y: number, label = DEFAULT_LABEL[kind]): string {
    if (this.readOnly) return ''
    const id = this.newId()
    this.undo.stopCapturing()
    this.change(() => {
      const node = new Y.Map<unknown>()
      node.set('kind', kind)
      node.set('label', label)
      node.set('x', Math.round(x - NODE_W / 2))
      node.set('y', Math.round(y - NODE_H / 2))
      this.nodes.set(id, node)
    })
    return id
  }

  /** Adds an image node centred at (x, y) showing the asset `src`; returns its id ('' when read-only). */
  addImage (src: string, x: number, y: number, size: { w: number, h: number }, label = DEFAULT_LABEL.image): string {
    if (this.readOnly) return ''
    const id = this.newId()
    this.undo.stopCapturing()
    this.change(() => {
      const node = new Y.Map<unknown>()
      node.set('kind', 'image')
      node.set('label', label.trim().slice(0, 80) || DEFAULT_LABEL.image)
      node.set('src', src)
      node.set('w', size.w)
      node.set('h', size.h)
      node.set('x', Math.round(x - size.w / 2))
      node.set('y', Math.round(y - size.h / 2))
      this.nodes.set(id, node)
    })
    return id
  }

  /** Moves nodes to new top-left positions (one drag = many calls = one undo step). */
  moveNodes (moves: { id: string, x: number, y: number }[]): void {
    this.change(() => {
      for (const { id, x, y } of moves) {
        const node = this.nodes.get(id)
        if (node === undefined) continue
        node.set('x', Math.round(x))
        node.set('y', Math.round(y))
      }
    })
  }

  /** Renames a node. */
  rename (id: string, label: string): void {
    const node = this.nodes.get(id)
    const clean = label.trim().slice(0, 80)
    if (node === undefined || clean === '' || node.get('label') === clean) return
    this.undo.stopCapturing()
    this.change(() => node.set('label', clean))
  }

  /** Connects two nodes; returns the edge id, or null for a self-loop or an existing edge. */
  connect (from: string, to: string): string | null {
    if (this.readOnly || from === to || !this.nodes.has(from) || !this.nodes.has(to)) return null
    for (const e of this.edges.values()) {
      if ((e.from === from && e.to === to) || (e.from === to && e.to === from)) return null
    }
    const id = this.newId()
    this.undo.stopCapturing()
    this.change(() => this.edges.set(id, { from, to }))
    return id
  }

  /** Deletes nodes (with their edges) and edges. */
  delete (nodeIds: string[], edgeIds: string[] = []): void {
    const gone = new Set(nodeIds)
    this.undo.stopCapturing()
    this.change(() => {
      for (const id of nodeIds) this.nodes.delete(id)
      for (const [id, e] of this.edges) {
        if (edgeIds.includes(id) || gone.has(e.from) || gone.has(e.to)) this.edges.delete(id)
      }
    })
  }

  /** Ends the current undo step (call when a drag starts and ends). */
  boundary (): void {
    this.undo.stopCapturing()
  }

  /** All nodes as plain data, sorted by id (stable render order). */
  nodeList (): NodeData[] {
    const out: NodeData[] = []
    for (const [id, m] of this.nodes) {
      const kind = (ALL_KINDS.includes(m.get('kind') as NodeKind) ? m.get('kind') : 'service') as NodeKind
      const size = (key: string, fallback: number): number => {
        const v = Number(m.get(key))
        return kind === 'image' && Number.isFinite(v) && v >= 16 && v <= 4000 ? v : fallback
      }
      const node: NodeData = {
        id,
        kind,
        label: String(m.get('label') ?? ''),
        x: Number(m.get('x') ?? 0),
        y: Number(m.get('y') ?? 0),
        w: size('w', kind === 'image' ? IMAGE_MAX_W : NODE_W),
        h: size('h', kind === 'image' ? IMAGE_MAX_H : NODE_H)
      }
      if (kind === 'image') node.src = String(m.get('src') ?? '')
      out.push(node)
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  /** All edges whose two ends exist (a concurrent delete can leave one dangling for a moment). */
  edgeList (): EdgeData[] {
    const out: EdgeData[] = []
    for (const [id, e] of this.edges) {
      if (this.nodes.has(e.from) && this.nodes.has(e.to)) out.push({ id, from: e.from, to: e.to })
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : 1))
  }

  /** Calls `fn` after every change to the canvas, local or remote. */
  observe (fn: () => void): () => void {
    const handler = (): void => fn()
    this.nodes.observeDeep(handler)
    this.edges.observe(handler)
    return () => {
      this.nodes.unobserveDeep(handler)
      this.edges.unobserve(handler)
    }
  }
}
