// What the fuzzer checks after a run (each room: honest content, what viewers and refused
// frames changed, whether it still works; the server's log), and the replay of suspect frames
// alone on fresh rooms, with their reduction to small frames that still fail.

import fs from 'node:fs'
import path from 'node:path'
import * as decoding from 'lib0/decoding'
import { devToken, sleep, waitFor } from '../e2e/server.mjs'
import { connectProvider, destroyProvider, waitSynced } from '../e2e/helpers.mjs'
import { HONEST_ROOT, MSG_SYNC, Y } from './corpus.mjs'
import { DOCUMENTED_CLOSES, Lane, roomWorks, within } from './lane.mjs'

const DEV_PROJECT = 'prj_dev'

/** GET a document route of the development project with the admin secret. */
async function documentApi (server, room, suffix = '', timeout = 15_000) {
  try {
    const res = await fetch(`${server.url}/v1/projects/${DEV_PROJECT}/documents/${room}${suffix}`, {
      headers: { authorization: `Bearer ${server.adminSecret}` },
      signal: AbortSignal.timeout(timeout)
    })
    const body = new Uint8Array(await res.arrayBuffer())
    return { status: res.status, body }
  } catch (err) {
    return { status: `no answer (${err.name})`, body: new Uint8Array(0) }
  }
}

/** The sync payloads (step 2 and updates) of a frame as JS decodes it; throws if it cannot. */
function syncPayloads (frame) {
  const dec = decoding.createDecoder(frame)
  const out = []
  while (decoding.hasContent(dec)) {
    const type = decoding.readVarUint(dec)
    if (type === MSG_SYNC) {
      const sub = decoding.readVarUint(dec)
      const payload = decoding.readVarUint8Array(dec)
      if (sub !== 0) out.push(payload)
    } else if (type === 1) {
      decoding.readVarUint8Array(dec)
    } else if (type === 2) {
      if (decoding.readVarUint(dec) === 0) decoding.readVarString(dec)
    } else if (type !== 3) {
      throw new Error(`message type ${type}`)
    }
  }
  return out
}

/** Map client -> clock of a doc or an update. */
const clocks = (sv) => new Map([...Y.decodeStateVector(sv)].sort((a, b) => a[0] - b[0]))

/**
 * Checks one room after the run; resolves a report with `problems` (empty when all is well).
 */
export async function checkRoom ({ server, room, viewerBase, restarted = false }) {
  const problems = []
  const report = { room: room.name, expectedLength: room.expected.length, problems }
  const honestOf = (doc) => doc.getText(HONEST_ROOT).toString()
  report.providerReconnects = room.writer.e2e.closes + room.watcher.e2e.closes
  // (After a restart the providers point at the old server: only the stored side is checked.)
  if (room.wedged || restarted) return checkWedged({ server, room, report, viewerBase })

  // The watcher converges on exactly what the writer wrote; so do the server's copy (read as
  // a Yjs update: the JSON view may fail on its own, which is reported apart) and a new
  // provider.
  const honestProblems = []
  const converged = await waitFor(() => honestOf(room.watcher.doc) === room.expected, { timeout: 15_000 }).then(() => true, () => false)
  if (!converged) honestProblems.push(`the watching provider's text differs from what was written (${honestOf(room.watcher.doc).length} of ${room.expected.length} chars)`)
  if (honestOf(room.writer.doc) !== room.expected) honestProblems.push('the writing provider\'s own text changed')
  const json = await documentApi(server, room.name)
  if (json.status === 200) {
    const serverHonest = JSON.parse(new TextDecoder().decode(json.body)).content?.[HONEST_ROOT] ?? ''
    if (serverHonest !== room.expected) honestProblems.push(`the server's honest text (JSON) differs (${serverHonest.length} of ${room.expected.length} chars)`)
  } else {
    problems.push(`GET the document as JSON -> ${json.status} ${new TextDecoder().decode(json.body).slice(0, 200)}`)
  }
  const fresh = connectProvider(server.wsUrl, room.name)
  const freshSynced = await waitSynced(fresh).then(() => true, () => false)
  if (!freshSynced) honestProblems.push('a new provider does not sync')
  else if (honestOf(fresh.doc) !== room.expected) honestProblems.push(`a new provider gets other honest text (${honestOf(fresh.doc).length} of ${room.expected.length} chars)`)

  // Viewers' frames carry updates by clients viewerBase…; none may be in the document. And
  // the document is the honest updates plus the frames the room accepted from editors, when
  // JS Yjs can say what those are.
  const bin = await documentApi(server, room.name, '/update')
  report.viewerContent = 'n/a'
  report.exact = 'n/a'
  if (bin.status !== 200) {
    problems.push(`GET the document as an update -> ${bin.status}`)
  } else {
    const serverDoc = new Y.Doc()
    let readable = true
    try { Y.applyUpdate(serverDoc, bin.body) } catch (err) {
      readable = false
      problems.push(`stock Yjs cannot load the server's document: ${err.message}`)
    }
    if (readable && honestOf(serverDoc) !== room.expected) honestProblems.push(`the server's honest text differs (${honestOf(serverDoc).length} of ${room.expected.length} chars)`)
    const serverClocks = clocks(Y.encodeStateVectorFromUpdate(bin.body))
    const viewers = [...serverClocks.keys()].filter((c) => c >= viewerBase && c < viewerBase + 2_000_000)
    report.viewerContent = viewers.length ? `${viewers.length} clients` : 'none'
    if (viewers.length) problems.push(`content from viewers' frames is in the document (clients ${viewers.slice(0, 5).join(', ')})`)
    const why = [...room.inexact]
    const shadow = new Y.Doc()
    for (const u of room.honestUpdates) Y.applyUpdate(shadow, u)
    for (const f of room.accepted) {
      try {
        for (const p of syncPayloads(typeof f === 'string' ? new Uint8Array(0) : f)) Y.applyUpdate(shadow, p)
      } catch (err) {
        why.push(`JS Yjs cannot apply an accepted frame (${err.message})`)
      }
    }
    if (shadow.store.pendingStructs || shadow.store.pendingDs) why.push('accepted frames left pending structs')
    if (readable && (serverDoc.store.pendingStructs || serverDoc.store.pendingDs)) why.push('the server\'s document has pending structs')
    if (!readable) why.push('the server\'s document does not load')
    if (why.length) {
      report.exact = `n/a (${why[0]}${why.length > 1 ? ` +${why.length - 1}` : ''})`
    } else if (Y.equalSnapshots(Y.snapshot(serverDoc), Y.snapshot(shadow))) {
      report.exact = 'yes'
    } else {
      const a = clocks(Y.encodeStateVector(serverDoc))
      const b = clocks(Y.encodeStateVector(shadow))
      const diff = [...new Set([...a.keys(), ...b.keys()])].filter((c) => a.get(c) !== b.get(c))
        .slice(0, 5).map((c) => `client ${c}: server ${a.get(c) ?? 0}, expected ${b.get(c) ?? 0}`)
      report.exact = 'NO'
      problems.push(`the document is not the honest updates plus the accepted frames (${diff.join('; ') || 'delete sets differ'})`)
    }
  }

  report.honest = honestProblems.length ? 'CHANGED' : 'as written'
  problems.push(...honestProblems)

  // Still works: the providers and a fresh pair of connections exchange an edit.
  room.writer.doc.getText(HONEST_ROOT).insert(room.expected.length, '.')
  room.expected += '.'
  const live = await waitFor(() => honestOf(room.watcher.doc) === room.expected && (!freshSynced || honestOf(fresh.doc) === room.expected), { timeout: 10_000 })
    .then(() => null, () => `an edit from the writing provider does not reach ${[
      honestOf(room.watcher.doc) !== room.expected && 'the watching provider',
      freshSynced && honestOf(fresh.doc) !== room.expected && 'a new provider'
    ].filter(Boolean).join(' nor ')}`)
  const raw = await roomWorks(server.wsUrl, room.name, server.token)
  report.works = live || raw ? `NO: ${[live, raw].filter(Boolean).join('; ')}` : 'yes'
  if (live) problems.push(live)
  if (raw) problems.push(raw)
  destroyProvider(fresh)

  if (report.providerReconnects > 0) problems.push(`the honest providers were disconnected ${report.providerReconnects} times`)
  return report
}

/**
 * A room that stopped answering during the run, or whose server had to be restarted: is it
 * back, and is what was written kept?
 */
async function checkWedged ({ server, room, report, viewerBase }) {
  const { problems } = report
  if (room.wedged) problems.push(`wedged during the run: ${room.wedged}`)
  report.honest = report.exact = report.viewerContent = 'n/a'
  // Read as a Yjs update: the JSON view may fail on its own (reported for the other rooms).
  const bin = await documentApi(server, room.name, '/update', 5_000)
  const doc = new Y.Doc()
  let readable = bin.status === 200
  if (readable) {
    try { Y.applyUpdate(doc, bin.body) } catch { readable = false }
  }
  if (readable) {
    const honest = doc.getText(HONEST_ROOT).toString()
    // The writer stopped when the room was retired: what it wrote until then may still be on
    // its way, but never more than it wrote.
    report.honest = room.expected.startsWith(honest) ? `${honest.length} chars kept` : 'CHANGED'
    if (report.honest === 'CHANGED') problems.push('the server\'s honest text is not what the writer wrote')
    const viewers = [...clocks(Y.encodeStateVectorFromUpdate(bin.body)).keys()].filter((c) => c >= viewerBase && c < viewerBase + 2_000_000)
    report.viewerContent = viewers.length ? `${viewers.length} clients` : 'none'
    if (viewers.length) problems.push(`content from viewers' frames is in the document (clients ${viewers.slice(0, 5).join(', ')})`)
  } else {
    report.honest = `unreadable: ${bin.status}`
    problems.push(`GET the document as an update -> ${bin.status}${bin.status === 200 ? ' that stock Yjs cannot load' : ''}`)
  }
  const why = await roomWorks(server.wsUrl, room.name, server.token, 5_000)
  report.works = why ? `NO: ${why}` : 'again'
  if (why) problems.push(`still wedged after the run: ${why}`)
  return report
}

// Lines of the server's output that mean a crash: a Rust panic, a wasm trap, a JS error
// escaping the worker, the runtime resetting an object or running out of something.
const CRASH = /panicked at|RuntimeError|unreachable|Maximum call stack|stack overflow|out of memory|memory access out of bounds|Uncaught|Durable Object (reset|storage)|exceeded (its )?(CPU|memory)|Aborted|segmentation|Internal error|workerd\/.*error/i

/** Offsets in `text` of the lines that mean a crash, in order. */
export function crashOffsets (text) {
  const out = []
  let at = 0
  for (const line of text.split('\n')) {
    if (CRASH.test(line)) out.push(at)
    at += line.length + 1
  }
  return out
}

/** Whether a sorted array of offsets has one in [from, to). */
export function anyWithin (offsets, from, to) {
  let lo = 0
  let hi = offsets.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (offsets[mid] < from) lo = mid + 1
    else hi = mid
  }
  return lo < offsets.length && offsets[lo] < to
}

/** Distinct crash lines of `text` (numbers and ids blanked) -> how many times. */
export function crashLines (text) {
  const out = new Map()
  const lines = text.split('\n')
  const plain = (l) => l.replace(/\x1b\[[0-9;]*m/g, '').trim()
  for (let i = 0; i < lines.length; i++) {
    if (!CRASH.test(lines[i])) continue
    let line = plain(lines[i]).replace(/^✘ \[ERROR\] /, '')
    // A panic's message is on the next non-empty line.
    if (/panicked at/.test(line)) {
      const next = lines.slice(i + 1, i + 4).map(plain).find((l) => l !== '')
      if (next) line += ` ${next}`
    }
    const key = line.replace(/0x[0-9a-f]+|\d+/gi, 'N').replace(/index\.crates\.io-[0-9a-fN]+\//, '').slice(0, 240)
    out.set(key, (out.get(key) ?? 0) + 1)
  }
  return out
}

const hex = (b) => Buffer.from(b).toString('hex')

/** The frame as hex, shortened past 200 bytes. */
function showFrame (frame) {
  if (typeof frame === 'string') return `text frame ${JSON.stringify(frame)}`
  return frame.length <= 200 ? hex(frame) : `${hex(frame.slice(0, 96))}…${hex(frame.slice(-32))} (${frame.length} bytes)`
}

let replays = 0

/**
 * Sends `frame` alone, with `role`, to a fresh room where a stock provider is watching; then
 * another joins and the document is read as JSON. Resolves what happened to the frame, to the
 * room and to the server (one that dies is started again for the next replay).
 */
async function replay (ctx, frame, role) {
  const server = ctx.server()
  const room = `repro-${++replays}`
  const mark = server.logs().length
  let got
  try {
    got = await replayOn(server, room, frame, role, ctx.clientErrors)
  } catch (err) {
    got = { outcome: `no outcome (${err.message})`, wedged: false, joiner: '', json: '' }
  }
  got.crash = [...crashLines(server.logs().slice(mark)).keys()][0] ?? ''
  got.died = await ctx.revive()
  return got
}

async function replayOn (server, room, frame, role, clientErrors) {
  let token
  for (let attempt = 1; !token; attempt++) {
    try {
      token = await within(devToken(server.url, { room, role, sub: `repro-${role}` }), 15_000, 'POST /v1/dev/token')
    } catch (err) {
      if (attempt >= 5) throw err
      await sleep(1000)
    }
  }
  const errorsBefore = clientErrors.length
  const watcher = connectProvider(server.wsUrl, room)
  await waitSynced(watcher, 5_000).catch(() => {})
  const lane = new Lane({ index: 900 + replays, url: server.wsUrl, room, role, token, timeout: 5_000 })
  const { outcome } = await lane.send(frame)
  await sleep(200)
  lane.drop()
  destroyProvider(watcher)
  const joiner = connectProvider(server.wsUrl, room)
  const joined = await waitSynced(joiner, 5_000).then(() => true, () => false)
  destroyProvider(joiner)
  // (Positions in a parser's message vary with the frame, not with the cause.)
  const clientError = clientErrors.slice(errorsBefore)[0]?.what.replace(/\d+/g, 'N')
  const json = await documentApi(server, room, '', 5_000)
  const wedged = await roomWorks(server.wsUrl, room, server.token, 5_000)
  return {
    outcome,
    wedged: Boolean(wedged),
    joiner: clientError ? `a stock client fails: ${clientError}` : joined ? '' : 'a new stock client does not sync',
    json: json.status === 200 ? '' : `GET JSON -> ${json.status}`
  }
}

const signature = (s) => [s.outcome, s.died && 'the server died or stopped answering', s.wedged && 'room wedged', s.joiner, s.json, s.crash && `log: ${s.crash}`].filter(Boolean).join(', ')
const suspect = (s) => s.died || s.wedged || s.crash || s.joiner || s.json || !(s.outcome === 'accepted' || s.outcome === 'denied' ||
  DOCUMENTED_CLOSES.has(Number(/^close (\d+)$/.exec(s.outcome)?.[1])))

/**
 * Replays suspect frames alone (up to three of each outcome and mutation) and, with `shrink`,
 * reduces each that fails alone to a smaller frame with the same failure. Prints them and saves
 * the frames under outDir; resolves one line per distinct failure.
 */
export async function reproduce ({ server, revive, suspects, shrink, seconds, outDir, clientErrors }) {
  const ctx = { server, revive, clientErrors }
  const groups = new Map()
  for (const s of suspects) {
    const key = `${s.outcome}|${s.mutation}|${s.mutation === 'none' ? s.base : ''}`
    if (!groups.has(key)) groups.set(key, [])
    groups.get(key).push(s)
  }
  const deadline = Date.now() + seconds * 1000
  console.log(`\nReplaying suspect frames alone on fresh rooms (${groups.size} kinds, at most ${seconds} s)${shrink ? ', and reducing them' : ''}:`)
  const found = new Map()
  let tried = 0
  for (const members of groups.values()) {
    if (Date.now() > deadline) break
    tried++
    for (const c of pick(members)) {
      const got = await replay(ctx, c.frame, c.role)
      if (!suspect(got)) {
        console.log(`  frame ${c.index} (${c.detail}, ${c.role}): ${c.outcome} in the run, alone ${signature(got)}`)
        continue
      }
      const sig = signature(got)
      // Deep values fail the same way for different reasons (values, types, JSON text).
      const key = `${sig}|${c.mutation.startsWith('deep') ? c.mutation : ''}`
      if (found.has(key)) {
        console.log(`  frame ${c.index} (${c.detail}, ${c.role}): ${sig} (as above)`)
        continue
      }
      const { frame, detail } = shrink ? await reduce(ctx, c, got) : c
      const file = path.join(outDir, `repro-${found.size + 1}.bin`)
      fs.writeFileSync(file, typeof frame === 'string' ? frame : Buffer.from(frame))
      found.set(key, `${sig} [${c.role}] ${detail}: ${showFrame(frame)} (saved as target/fuzz/${path.basename(file)})`)
      console.log(`  frame ${c.index} (${c.detail}, ${c.role}): ${sig}${shrink ? ` — reduced to ${detail}, ${frame.length} bytes` : ''}`)
    }
  }
  if (tried < groups.size) console.log(`  (${groups.size - tried} kinds not replayed: out of time)`)
  return [...found.values()]
}

/**
 * Up to three frames of a group: for frames made from a size, the largest, the median and
 * the smallest (a depth may fail one way at 300 and another at 6,000); else the first three.
 */
function pick (members) {
  if (members.length <= 3) return members
  if (members[0].param === undefined) return members.slice(0, 3)
  const bySize = [...members].sort((a, b) => b.param - a.param)
  return [bySize[0], bySize[bySize.length >> 1], bySize[bySize.length - 1]]
}

/** The smallest frame found (within a budget of replays) that fails as `c` did. */
async function reduce (ctx, c, got) {
  const same = async (frame) => signature(await replay(ctx, frame, c.role)) === signature(got)
  // Frames made from a size (depth, count): the smallest size that still fails.
  if (c.remake && c.param > 1) {
    let lo = 1
    let hi = c.param
    for (let step = 0; step < 16 && lo < hi; step++) {
      const mid = Math.floor((lo + hi) / 2)
      if (await same(c.remake(mid))) hi = mid
      else lo = mid + 1
    }
    return { frame: c.remake(hi), detail: c.describe(hi) }
  }
  // Other frames: drop ever smaller chunks while the failure stays (ddmin, bounded).
  let frame = c.frame
  if (typeof frame === 'string') return { frame, detail: c.detail }
  let budget = 48
  for (let chunk = frame.length >> 1; chunk >= 1 && budget > 0; chunk >>= 1) {
    for (let at = 0; at + chunk <= frame.length && budget > 0;) {
      const candidate = new Uint8Array([...frame.slice(0, at), ...frame.slice(at + chunk)])
      budget--
      if (candidate.length > 0 && await same(candidate)) frame = candidate
      else at += chunk
    }
  }
  return { frame, detail: `${c.detail}, reduced` }
}
