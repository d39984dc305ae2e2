// Describes a history diff (`GET …/diff`, a merge preview) of the canvas in words: which nodes
// were added, removed, renamed or moved, and which edges came and went. The diff's shape is in
// docs/history.md: per changed root, maps list `added`, `removed` and `changed` keys.

import type { Changes } from '../../src/index.js'

/** One line of a description: `+` added, `-` removed, `~` changed. */
export interface ChangeLine {
  sign: '+' | '-' | '~'
  text: string
}

type Json = Record<string, unknown>

const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v)
const str = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v))
const quote = (s: string): string => `“${s}”`

/**
 * The lines describing `changes`. `labelOf` names a node id that the diff itself does not
 * (an edge between two nodes that did not change): the caller knows the boards on both sides.
 */
export function describeChanges (changes: Changes, labelOf: (id: string) => string | undefined = () => undefined): ChangeLine[] {
  const roots = new Map(changes.roots.map((r) => [r.root, r as Json & { root: string, kind: string }]))
  const labels = new Map<string, string>()
  const nodes = roots.get('nodes')
  if (nodes?.kind === 'map') {
    for (const field of ['added', 'removed'] as const) {
      for (const [id, n] of Object.entries((nodes[field] ?? {}) as Json)) if (isObject(n)) labels.set(id, str(n.label ?? id))
    }
    for (const [id, c] of Object.entries((nodes.changed ?? {}) as Json)) {
      if (isObject(c) && isObject(c.after)) labels.set(id, str(c.after.label ?? id))
    }
  }
  const name = (id: string): string => quote(labels.get(id) ?? labelOf(id) ?? id)
  const lines: ChangeLine[] = []

  if (nodes?.kind === 'map') {
    for (const n of Object.values((nodes.added ?? {}) as Json)) {
      if (isObject(n)) lines.push({ sign: '+', text: `Added ${str(n.kind ?? 'node')} ${quote(str(n.label ?? ''))}` })
    }
    for (const n of Object.values((nodes.removed ?? {}) as Json)) {
      if (isObject(n)) lines.push({ sign: '-', text: `Removed ${str(n.kind ?? 'node')} ${quote(str(n.label ?? ''))}` })
    }
    for (const [id, c] of Object.entries((nodes.changed ?? {}) as Json)) {
      if (!isObject(c)) continue
      const before = isObject(c.before) ? c.before : {}
      const after = isObject(c.after) ? c.after : {}
      const what: string[] = []
      if (before.label !== after.label) what.push(`renamed ${quote(str(before.label ?? ''))} → ${quote(str(after.label ?? ''))}`)
      if (before.kind !== after.kind) what.push(`now a ${str(after.kind ?? 'node')}`)
      if (before.x !== after.x || before.y !== after.y) what.push('moved')
      if (what.length === 0) what.push('changed')
      const subject = before.label !== after.label ? str(after.kind ?? 'node') : `${str(after.kind ?? 'node')} ${name(id)}`
      lines.push({ sign: '~', text: `${subject[0].toUpperCase()}${subject.slice(1)}: ${what.join(', ')}` })
    }
  }
  const edges = roots.get('edges')
  if (edges?.kind === 'map') {
    for (const e of Object.values((edges.added ?? {}) as Json)) {
      if (isObject(e)) lines.push({ sign: '+', text: `Connected ${name(str(e.from))} → ${name(str(e.to))}` })
    }
    for (const e of Object.values((edges.removed ?? {}) as Json)) {
      if (isObject(e)) lines.push({ sign: '-', text: `Disconnected ${name(str(e.from))} → ${name(str(e.to))}` })
    }
    for (const id of Object.keys((edges.changed ?? {}) as Json)) lines.push({ sign: '~', text: `Edge ${id} changed` })
  }
  for (const [root, r] of roots) {
    if ((root === 'nodes' || root === 'edges') && r.kind === 'map') continue
    lines.push({ sign: '~', text: `${root} (${r.kind}) changed` })
  }
  return lines
}
