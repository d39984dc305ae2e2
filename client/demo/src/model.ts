// The shared canvas: nodes and edges in the room's Y.Doc, and per-user undo.
//
// Layout (so any client, or a server-side script, can read it):
//   doc.getMap('nodes'): id -> Y.Map { kind, label, x, y }   one Y.Map per node, so concurrent
//                                                             moves and renames merge per field
//   doc.getMap('edges'): id -> { from, to }                  edges never change, only come and go

import * as Y from 'yjs'

/** What a node stands for in a system diagram. */
export type NodeKind = 'service' | 'database' | 'cache' | 'queue'

/** Every kind, in toolbar order. */
export const NODE_KINDS: NodeKind[] = ['service', 'database', 'cache', 'queue']

/** A node as plain data. */
export interface NodeData {
  id: string
  kind: NodeKind
  label: string
  x: number
  y: number
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

const DEFAULT_LABEL: Record<NodeKind, string> = {
  service: 'Service',
  database: 'Database',
  cache: 'Cache',
  queue: 'Queue'
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
      out.push({
        id,
        kind: (NODE_KINDS.includes(m.get('kind') as NodeKind) ? m.get('kind') : 'service') as NodeKind,
        label: String(m.get('label') ?? ''),
        x: Number(m.get('x') ?? 0),
        y: Number(m.get('y') ?? 0)
      })
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
