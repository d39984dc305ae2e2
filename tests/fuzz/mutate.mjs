// Deterministic mutations of the corpus (tests/fuzz/corpus.mjs). Frame i of a run depends only
// on the seed and i's place in the sequence, never on timing, so a seed names the same frames
// on every machine.

import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import {
  MSG_AWARENESS, MSG_QUERY_AWARENESS, MSG_SYNC, awarenessFloodPayload, awarenessFrame, frame,
  nestedAnyUpdate, nestedJsonUpdate, nestedTypesUpdate, syncFrame, updateFrame, Y
} from './corpus.mjs'

/** mulberry32: a small seeded PRNG (the same as tests/e2e/helpers.mjs's seededBytes). */
export function prng (seed) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)) // inclusive
  return {
    next,
    int,
    pick: (list) => list[Math.floor(next() * list.length)],
    /** Log-uniform integer in [lo, hi]: as many small values as large ones. */
    logInt: (lo, hi) => Math.round(Math.exp(Math.log(lo) + next() * (Math.log(hi) - Math.log(lo)))),
    bytes: (n) => Uint8Array.from({ length: n }, () => int(0, 255))
  }
}

/** Varints that overflow or strain readers: 2^31-1 … 2^64-1, and an 11-byte overlong one. */
const HUGE = [2n ** 31n - 1n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 70n]

/** lib0 varuint of a BigInt of any size (lib0's own writer stops at 2^53). */
export function bigVarUint (n) {
  const out = []
  do {
    let byte = Number(n & 0x7fn)
    n >>= 7n
    if (n > 0n) byte |= 0x80
    out.push(byte)
  } while (n > 0n)
  return Uint8Array.from(out)
}

const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}

/**
 * Splits a single-message frame into [header, payload] when it is a sync or awareness message
 * with a length-prefixed payload that ends the frame; null otherwise.
 */
export function splitMessage (bytes) {
  if (typeof bytes === 'string' || bytes.length === 0) return null
  try {
    const dec = decoding.createDecoder(bytes)
    const type = decoding.readVarUint(dec)
    if (type === MSG_SYNC) decoding.readVarUint(dec)
    else if (type !== MSG_AWARENESS) return null
    const headerEnd = dec.pos
    const payload = decoding.readVarUint8Array(dec)
    if (dec.pos !== bytes.length) return null
    return { type, header: bytes.slice(0, headerEnd), payload }
  } catch {
    return null
  }
}

/** Puts a (changed) payload back behind its header with a correct length. */
const rewrap = ({ header }, payload) => frame((enc) => {
  encoding.writeUint8Array(enc, header)
  encoding.writeVarUint8Array(enc, payload)
})

/** Offsets in `bytes` where a complete varuint starts and ends, scanning byte by byte. */
function varintAt (bytes, pos) {
  let end = pos
  while (end < bytes.length && end - pos < 10 && (bytes[end] & 0x80)) end++
  return end < bytes.length && !(bytes[end] & 0x80) ? end + 1 : null
}

/** Replaces the varuint at `pos` of `payload` with `value`. */
function replaceVarint (payload, pos, value) {
  const end = varintAt(payload, pos)
  if (end === null) return null
  return concat(payload.slice(0, pos), bigVarUint(value), payload.slice(end))
}

const binary = (f) => typeof f === 'string' ? new TextEncoder().encode(f) : f

/**
 * The mutations, with weights (out of 100). Each takes (rng, ctx) and returns
 * `{ frame, detail, param? }`, or null when it does not apply to the chosen item (another is
 * then drawn). ctx: { item, corpus, clientBase, maxFrameBytes }.
 */
export const MUTATIONS = [
  ['none', 10, (rng, { item }) => ({ frame: item.frame, detail: item.name })],
  ['truncate', 10, (rng, { item }) => {
    const b = binary(item.frame)
    if (b.length < 2) return null
    const cut = rng.int(1, b.length - 1)
    return { frame: b.slice(0, cut), detail: `${item.name} cut to ${cut}/${b.length}` }
  }],
  ['byte-flip', 16, (rng, { item }) => {
    const b = binary(item.frame).slice()
    if (b.length === 0) return null
    const n = rng.int(1, Math.min(8, b.length))
    for (let i = 0; i < n; i++) b[rng.int(0, b.length - 1)] ^= rng.int(1, 255)
    return { frame: b, detail: `${item.name} with ${n} bytes flipped` }
  }],
  ['length-inflate', 6, (rng, { item }) => {
    const m = splitMessage(item.frame)
    if (!m) return null
    const len = BigInt(m.payload.length)
    const value = rng.next() < 0.5 ? len + BigInt(rng.int(1, 64)) : rng.pick(HUGE)
    return { frame: concat(m.header, bigVarUint(value), m.payload), detail: `${item.name} claiming ${value} payload bytes` }
  }],
  ['count-inflate', 8, (rng, { item }) => {
    // The payload's first varuint is a count in every message that has one: clients of an
    // update or a state vector, entries of an awareness update.
    const m = splitMessage(item.frame)
    if (!m || m.payload.length === 0) return null
    const value = rng.pick(HUGE)
    const payload = replaceVarint(m.payload, 0, value)
    return payload && { frame: rewrap(m, payload), detail: `${item.name} with its count set to ${value}` }
  }],
  ['varint-inflate', 10, (rng, { item }) => {
    // Any varuint inside the payload (a struct count, a string or array length, a clock…).
    const m = splitMessage(item.frame)
    if (!m || m.payload.length < 2) return null
    const pos = rng.int(0, m.payload.length - 1)
    const value = rng.pick(HUGE)
    const payload = replaceVarint(m.payload, pos, value)
    return payload && { frame: rewrap(m, payload), detail: `${item.name} with the varuint at payload offset ${pos} set to ${value}` }
  }],
  ['good-then-bad', 6, (rng, ctx) => {
    // A valid update and then a broken message in the same frame: all or nothing.
    const good = updateFrame(validUpdate(ctx, rng))
    const bad = binary(MUTATIONS.find(([n]) => n === 'truncate')[2](rng, ctx)?.frame ?? new Uint8Array([0, 2, 9]))
    return { frame: concat(good, bad), detail: `a valid update, then ${ctx.item.name} broken` }
  }],
  ['message-flood', 8, (rng, ctx) => {
    const count = rng.logInt(100, 2000)
    const kind = rng.pick(['step1-empty', 'query-awareness', 'awareness', 'text-insert', 'mixed'])
    const pool = kind === 'mixed'
      ? ctx.corpus.filter((c) => ['step1-empty', 'query-awareness', 'awareness', 'text-insert', 'map-json'].includes(c.name))
      : [ctx.corpus.find((c) => c.name === kind)]
    const parts = []
    const remake = (n) => concat(...Array.from({ length: n }, (_, i) => binary(pool[i % pool.length].frame)))
    return { frame: remake(count), detail: `${count} × ${kind} in one frame`, param: count, remake, describe: (n) => `${n} × ${kind} in one frame` }
  }],
  ['awareness-flood', 5, (rng, ctx) => {
    const count = rng.logInt(100, 2000)
    const base = ctx.clientBase + 100_000 + rng.int(0, 1_000_000)
    const remake = (n) => awarenessFrame(awarenessFloodPayload(base, n))
    return { frame: remake(count), detail: `awareness update with ${count} client ids`, param: count, remake, describe: (n) => `awareness update with ${n} client ids` }
  }],
  ['deep-any', 5, (rng, ctx) => {
    const depth = rng.logInt(100, 10_000)
    const shape = rng.pick(['array', 'object'])
    const client = ctx.clientBase + rng.int(500, 999)
    const remake = (n) => updateFrame(nestedAnyUpdate(client, n, shape))
    const describe = (n) => `Any ${shape} nested ${n} deep`
    return { frame: remake(depth), detail: describe(depth), param: depth, remake, describe }
  }],
  ['deep-json', 3, (rng, ctx) => {
    const depth = rng.logInt(100, 10_000)
    const kind = rng.pick(['embed', 'format', 'json'])
    const shape = rng.pick(['array', 'object'])
    const client = ctx.clientBase + rng.int(500, 999)
    const remake = (n) => updateFrame(nestedJsonUpdate(client, n, kind, shape))
    const describe = (n) => `${kind} JSON ${shape} nested ${n} deep`
    return { frame: remake(depth), detail: describe(depth), param: depth, remake, describe }
  }],
  ['deep-types', 3, (rng, ctx) => {
    const depth = rng.logInt(100, 10_000)
    const client = ctx.clientBase + rng.int(500, 999)
    const remake = (n) => updateFrame(nestedTypesUpdate(client, n))
    const describe = (n) => `Y.Map nested ${n} deep`
    return { frame: remake(depth), detail: describe(depth), param: depth, remake, describe }
  }],
  ['oversized', 2, (rng, ctx) => {
    const over = rng.next() < 0.75
    const size = over ? ctx.maxFrameBytes + rng.int(1, 4096) : ctx.maxFrameBytes - rng.int(64, 4096)
    return { frame: updateOfSize(ctx.clientBase + rng.int(1000, 1999), size), detail: `${size}-byte update (limit ${ctx.maxFrameBytes})` }
  }],
  ['random-bytes', 4, (rng) => {
    const b = rng.bytes(rng.int(1, 64))
    b[0] = rng.pick([MSG_SYNC, MSG_AWARENESS, 2, MSG_QUERY_AWARENESS, b[0]])
    if (b[0] === MSG_SYNC && b.length > 1) b[1] = rng.int(0, 3)
    return { frame: b, detail: `${b.length} random bytes` }
  }],
  ['step1-bogus', 4, (rng, ctx) => {
    // A state vector claiming clocks the room never saw, for clients it may or may not know.
    const n = rng.int(1, 20)
    const sv = frame((enc) => {
      encoding.writeVarUint(enc, n)
      for (let i = 0; i < n; i++) {
        encoding.writeVarUint(enc, rng.next() < 0.5 ? ctx.clientBase + rng.int(0, 40) : rng.int(0, 2 ** 32 - 1))
        encoding.writeVarUint(enc, rng.int(0, 2 ** 31))
      }
    })
    return { frame: syncFrame(0, sv), detail: `step 1 with ${n} made-up clocks` }
  }]
]

/** A valid update from this corpus (its content depends on the item drawn). */
function validUpdate ({ corpus }, rng) {
  const updates = corpus.map((c) => splitMessage(c.frame)).filter((m) => m && m.type === MSG_SYNC && m.header[1] === 2)
  return rng.pick(updates).payload
}

/** A valid update frame of exactly `size` bytes (one long text insert). */
export function updateOfSize (clientId, size) {
  let len = Math.max(1, size - 40)
  for (;;) {
    const doc = new Y.Doc()
    doc.clientID = clientId
    doc.getText('fz-big').insert(0, 'z'.repeat(len))
    const f = updateFrame(Y.encodeStateAsUpdate(doc))
    if (f.length === size) return f
    len += size - f.length
  }
}

/**
 * The frames of a run: `count` of them for `seed`, drawn over `corpus`.
 * @returns {Array<{ index: number, mutation: string, detail: string, frame: Uint8Array | string, param?: number }>}
 */
export function generateFrames ({ seed, count, corpus, clientBase, maxFrameBytes }) {
  const rng = prng(seed)
  const total = MUTATIONS.reduce((n, [, w]) => n + w, 0)
  const frames = []
  while (frames.length < count) {
    let r = rng.next() * total
    const [name, , mutate] = MUTATIONS.find(([, w]) => (r -= w) < 0) ?? MUTATIONS[0]
    const item = rng.pick(corpus)
    const made = mutate(rng, { item, corpus, clientBase, maxFrameBytes })
    if (!made) continue
    frames.push({ index: frames.length, mutation: name, base: item.name, ...made })
  }
  return frames
}

