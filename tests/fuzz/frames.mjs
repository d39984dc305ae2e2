// Frame fuzzer: y-protocols frames, valid ones made with real Yjs and deterministic mutations
// of them (tests/fuzz/corpus.mjs, mutate.mjs), sent through `wrangler dev` by connections of
// every role to a few rooms, while two stock y-websocket providers per room edit a Y.Text and
// watch. Afterwards it checks that the server is alive, that every room still works, that the
// honest content is exactly what the providers wrote, that viewers changed nothing and that the
// accepted frames explain everything else; it prints what became of the frames and exits
// non-zero on a wedged room, a crash or changed content.
//
//   node tests/fuzz/frames.mjs [--frames N] [--seed S] [--rooms R] [--timeout MS]
//                              [--max-wedged K] [--max-restarts M] [--repro-seconds T] [--shrink]
//
// Suspect frames are replayed alone on fresh rooms, for at most T seconds (default 30), to
// tell the frame that fails from bystanders; --shrink also reduces each to a small frame that
// still fails (scripts/fuzz does both without the short budget).

import fs from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { REPO_ROOT, devToken, sleep, startServer } from '../e2e/server.mjs'
import { connectProvider, destroyAll, destroyProvider, waitSynced } from '../e2e/helpers.mjs'
import { HONEST_ROOT, buildCorpus } from './corpus.mjs'
import { generateFrames } from './mutate.mjs'
import { DOCUMENTED_CLOSES, Lane, within } from './lane.mjs'
import { anyWithin, checkRoom, crashLines, crashOffsets, reproduce } from './checks.mjs'

const { values: opts } = parseArgs({
  options: {
    frames: { type: 'string', default: '2000' },
    seed: { type: 'string', default: '1' },
    rooms: { type: 'string', default: '4' },
    timeout: { type: 'string', default: '3000' },
    'max-wedged': { type: 'string', default: '8' },
    'repro-seconds': { type: 'string', default: '30' },
    'max-restarts': { type: 'string', default: '1' },
    shrink: { type: 'boolean', default: false }
  }
})
const FRAMES = Number(opts.frames)
const SEED = Number(opts.seed)
const SLOTS = Number(opts.rooms)
const PROBE_TIMEOUT_MS = Number(opts.timeout)
// A wedged room is replaced by a fresh one; after this many the run stops (the rest would
// mostly repeat it, at a probe timeout per frame).
const MAX_WEDGED = Number(opts['max-wedged'])
// A server that dies or hangs during the run is started again this many times at most.
const MAX_RESTARTS = Number(opts['max-restarts'])
const ROLES = ['viewer', 'editor', 'owner']
// Small, so that oversized frames cost little; the rule is the same at any size.
const MAX_FRAME_BYTES = 256 * 1024
// Client ids of the updates in the frames: editors' and viewers' corpora apart, so a viewer's
// content found in the document afterwards is told from an editor's.
const EDITOR_BASE = 100_000
const VIEWER_BASE = 0x7e000000
const OUT_DIR = path.join(REPO_ROOT, 'target', 'fuzz')

// A stock provider that fails on what the server relays must not end the run, nor flood the
// output: y-websocket logs "Caught error while handling a Yjs update"; other throws are caught
// here. Both are counted as failures.
const clientErrors = []
const consoleError = console.error
console.error = (...args) => {
  if (typeof args[0] === 'string' && args[0].startsWith('Caught error while handling a Yjs update')) {
    clientErrors.push({ at: Date.now(), what: `y-websocket: ${args[0]}: ${String(args[1]).split('\n')[0]}` })
  } else {
    consoleError(...args)
  }
}
process.on('uncaughtException', (err) => {
  clientErrors.push({ at: Date.now(), what: `uncaught: ${String(err && err.stack ? err.stack.split('\n')[0] : err)}` })
})

// Every stock provider adds an exit listener.
process.setMaxListeners(0)

const started = Date.now()
console.log(`fuzzing ${FRAMES} frames, seed ${SEED}, ${SLOTS} rooms at a time × ${ROLES.join('/')} (MAX_FRAME_BYTES ${MAX_FRAME_BYTES})`)
fs.rmSync(OUT_DIR, { recursive: true, force: true })
fs.mkdirSync(OUT_DIR, { recursive: true })
let server = await startServer({ vars: { MAX_FRAME_BYTES: String(MAX_FRAME_BYTES) } })
// The output of servers this run had to restart, kept for target/fuzz/.
const earlierLogs = []
let failed = false
try {
  failed = await run()
} catch (err) {
  consoleError(err)
  failed = true
} finally {
  destroyAll()
  fs.mkdirSync(OUT_DIR, { recursive: true })
  earlierLogs.forEach((text, i) => fs.writeFileSync(path.join(OUT_DIR, `server-${i + 1}.log`), text))
  fs.writeFileSync(path.join(OUT_DIR, 'server.log'), server.logs())
  await server.stop()
}
console.log(`\n${failed ? 'FAILED' : 'passed'} in ${((Date.now() - started) / 1000).toFixed(1)} s (server output: target/fuzz/server.log)`)
process.exit(failed ? 1 : 0)

/** A development token; retried for a while, as a crash can take the worker down with it. */
async function mint (body) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await within(devToken(server.url, body), 15_000, 'POST /v1/dev/token')
    } catch (err) {
      // A 500 may pass as the runtime resets; silence means it is hung.
      if (attempt >= 10 || /no answer within/.test(err.message)) throw err
      await sleep(1000)
    }
  }
}

/** A room with its two honest providers and one fuzzing lane per role. */
async function openRoom (slot, generation) {
  const name = `fuzz-${SEED}-${slot}${generation ? `-${generation}` : ''}`
  const writer = connectProvider(server.wsUrl, name)
  const watcher = connectProvider(server.wsUrl, name)
  const room = { name, slot, server, writer, watcher, expected: '', honestUpdates: [], accepted: [], inexact: [], lanes: [], recent: [], wedged: null }
  // What the writer itself wrote (not what reached it from the server).
  writer.doc.on('update', (u, origin) => { if (origin !== writer) room.honestUpdates.push(u) })
  for (const role of ROLES) {
    const token = await mint({ room: name, role, sub: `fuzz-${role}-${slot}` })
    room.lanes.push(new Lane({ index: slot * 10 + ROLES.indexOf(role) + generation * 100, url: server.wsUrl, room: name, role, token, timeout: PROBE_TIMEOUT_MS }))
  }
  await Promise.all([waitSynced(writer), waitSynced(watcher)])
  return room
}

async function run () {
  const editorFrames = generateFrames({ seed: SEED, count: FRAMES, corpus: buildCorpus(EDITOR_BASE), clientBase: EDITOR_BASE, maxFrameBytes: MAX_FRAME_BYTES })
  const viewerFrames = generateFrames({ seed: SEED, count: FRAMES, corpus: buildCorpus(VIEWER_BASE), clientBase: VIEWER_BASE, maxFrameBytes: MAX_FRAME_BYTES })

  const rooms = [] // every room of the run, wedged ones included
  const slots = []
  for (let s = 0; s < SLOTS; s++) {
    slots.push({ room: await openRoom(s, 0), generation: 0, replacing: null })
    rooms.push(slots[s].room)
  }
  let wedgedRooms = 0
  let serverDown = false
  const failuresDuringRun = []
  let restarting = null
  let restarts = 0
  /**
   * Starts a server that died or hung again, on its storage (at most MAX_RESTARTS times; one
   * restart for everyone who finds it gone at once); the rooms move to it as they are replaced.
   * Resolves false when no restart is left.
   */
  function restartDuringRun () {
    if (!restarting) {
      if (restarts >= MAX_RESTARTS) return Promise.resolve(false)
      restarts++
      restarting = (async () => {
        failuresDuringRun.push('the server died or stopped answering during the run; started again on its storage')
        earlierLogs.push(server.logs())
        server = await server.restart()
        return true
      })().finally(() => { restarting = null })
    }
    return restarting
  }

  /** Retires a slot's wedged room and puts a fresh one in its place (once, whoever asks). */
  function replace (slot, room, why) {
    if (slot.room !== room) return slot.replacing
    if (!slot.replacing) {
      room.wedged = why
      wedgedRooms++
      for (const lane of room.lanes) lane.drop()
      // Its providers would only reconnect to it in a loop.
      destroyProvider(room.writer)
      destroyProvider(room.watcher)
      slot.replacing = (async () => {
        // The server may be busy resetting, hung for a while, or dead: a few tries, and one
        // that finds it gone starts it again (once for the whole run).
        for (let attempt = 1; ; attempt++) {
          try {
            const next = await openRoom(room.slot, ++slot.generation)
            rooms.push(next)
            slot.room = next
            break
          } catch (err) {
            failuresDuringRun.push(`room slot ${room.slot}: no new room (${err.message})`)
            if (gone(await health(server))) {
              if (!(await restartDuringRun()) || gone(await health(server))) serverDown = true
            }
            if (attempt >= 3 || serverDown) {
              slot.dead = `no new room: ${err.message}`
              break
            }
            await sleep(5_000)
          }
        }
        slot.replacing = null
      })()
    }
    return slot.replacing
  }

  // The honest writers type while the fuzzing goes on.
  let typing = true
  const typist = (async () => {
    for (let i = 0; typing; i++) {
      for (const { room } of slots) {
        const s = `${i} `
        room.writer.doc.getText(HONEST_ROOT).insert(room.expected.length, s)
        room.expected += s
      }
      await sleep(100)
    }
  })()

  // Frame i goes to slot (i mod S), role (i div S mod 3); each lane sends its frames in order.
  const results = new Array(FRAMES)
  const logMarks = []
  let sent = 0
  const lanesPerSlot = ROLES.length
  await Promise.all(slots.flatMap((slot, s) => ROLES.map(async (role, r) => {
    let timeouts = 0
    for (let i = s + r * SLOTS; i < FRAMES; i += SLOTS * lanesPerSlot) {
      const f = (role === 'viewer' ? viewerFrames : editorFrames)[i]
      if (wedgedRooms >= MAX_WEDGED || serverDown) {
        results[i] = { ...f, role, room: null, outcome: 'skipped', answers: 0, ms: 0 }
        continue
      }
      if (slot.replacing) await slot.replacing
      if (slot.dead) {
        results[i] = { ...f, role, room: null, outcome: 'skipped', answers: 0, ms: 0 }
        continue
      }
      const room = slot.room
      const lane = room.lanes[r]
      const gen = earlierLogs.length
      const mark = server.logs().length
      const at = Date.now()
      room.recent.push(i)
      if (room.recent.length > 8) room.recent.shift()
      const res = await lane.send(f.frame)
      results[i] = { ...f, role, room: room.name, at, ...res }
      if (++sent % 1000 === 0) console.log(`  ${sent} frames sent, ${wedgedRooms} rooms wedged, ${((Date.now() - started) / 1000).toFixed(0)} s`)
      // (Only where the same server took the frame and answered it.)
      if (gen === earlierLogs.length) logMarks.push({ i, gen, from: mark, to: server.logs().length })
      if (res.outcome === 'accepted' && role !== 'viewer') room.accepted.push(f.frame)
      if (res.outcome === 'timeout') room.inexact.push(`frame ${i} had no answer`)
      timeouts = res.outcome === 'timeout' ? timeouts + 1 : 0
      // Two probes in a row without an answer, or a room that refuses its members: wedged.
      if (timeouts >= 2 || res.outcome.startsWith('connect')) {
        timeouts = 0
        await replace(slot, room, `frames ${room.recent.join(', ')} were its last; then ${res.outcome}`)
      }
    }
  })))
  const fuzzSeconds = (Date.now() - started) / 1000
  typing = false
  await typist
  for (const room of rooms) for (const lane of room.lanes) lane.drop()

  // Checks. A server that died is started again on its storage, to see what it kept (and the
  // rooms checked from then on are compared on the stored side only).
  const failures = [...failuresDuringRun]
  // Crash lines by server: the run's own, and those of any it had to start again.
  const crashAt = [...earlierLogs, server.logs()].map(crashOffsets)
  const revive = async (when) => {
    failures.push(`the server process died ${when}; started again on its storage`)
    earlierLogs.push(server.logs())
    server = await server.restart()
    return server
  }
  const alive = await health(server)
  if (alive !== 200) {
    failures.push(`the server is not healthy after the run: GET /health -> ${alive}`)
    if (gone(alive) || serverDown) await revive('or stopped answering during the run')
  }
  const roomReports = []
  for (const room of rooms) {
    if (gone(await health(server))) await revive(`or stopped answering while the rooms were checked (before ${room.name})`)
    const report = await checkRoom({ server, room, viewerBase: VIEWER_BASE, restarted: room.server !== server })
    roomReports.push(report)
    for (const problem of report.problems) failures.push(`${room.name}: ${problem}`)
  }
  const distinct = new Map()
  for (const { what } of clientErrors) distinct.set(what, (distinct.get(what) ?? 0) + 1)
  for (const [e, n] of distinct) failures.push(`a stock client failed on what the server sent (${n}×): ${e}`)

  printOutcomes(results)
  printRooms(roomReports, rooms)
  console.log(`\nfuzzing took ${fuzzSeconds.toFixed(1)} s; ${wedgedRooms} rooms wedged${wedgedRooms >= MAX_WEDGED ? ` (the run stopped at ${MAX_WEDGED})` : ''}`)

  // Frames that point at a fault, most telling first, replayed alone to confirm (and reduced
  // with --shrink): those in flight when the log shows a crash or a stock client failed, the
  // last ones a room had before it wedged, the corpus content of rooms whose document stopped
  // rendering, and those with an outcome the protocol does not give (often only bystanders
  // of another frame's crash: the whole room's connections drop).
  const suspects = new Set()
  for (const { i, gen, from, to } of logMarks) {
    // (A frame the room refused with a documented code was handled; it did not crash it.)
    if (!isRefusal(results[i].outcome) && anyWithin(crashAt[gen], from, to)) suspects.add(results[i])
  }
  for (const { at } of clientErrors) {
    for (const r of results) if (r?.outcome === 'accepted' && r.at <= at && at <= r.at + r.ms + 200) suspects.add(r)
  }
  for (const room of rooms) if (room.wedged) for (const i of room.recent) suspects.add(results[i])
  if (roomReports.some((r) => r.problems.some((p) => /JSON|stock/.test(p)))) {
    const seen = new Set()
    for (const r of results) {
      if (!r || r.outcome !== 'accepted' || r.role === 'viewer') continue
      const key = r.mutation === 'none' ? r.base : r.mutation.startsWith('deep') ? r.mutation : null
      if (key && !seen.has(key)) { seen.add(key); suspects.add(r) }
    }
  }
  for (const r of results) if (r && isSuspect(r.outcome)) suspects.add(r)
  if (suspects.size) {
    // The rooms' providers go first: what they might still throw would be blamed on a replay.
    destroyAll()
    await sleep(500)
    try {
      const found = await reproduce({
        server: () => server,
        revive: async () => {
          if (gone(await health(server))) {
            await revive('or stopped answering while a suspect was replayed')
            return true
          }
          return false
        },
        suspects: [...suspects].filter(Boolean),
        shrink: opts.shrink,
        seconds: Number(opts['repro-seconds']),
        outDir: OUT_DIR,
        clientErrors
      })
      for (const f of found) failures.push(`alone: ${f}`)
    } catch (err) {
      failures.push(`replaying the suspects failed: ${err.message}`)
    }
  }

  // Every server's output, the ones restarted included.
  const crashes = new Map()
  for (const text of [...earlierLogs, server.logs()]) {
    for (const [line, n] of crashLines(text)) crashes.set(line, (crashes.get(line) ?? 0) + n)
  }
  for (const [line, n] of crashes) failures.push(`server log (${n}×): ${line}`)

  if (failures.length) {
    console.log('\nFailures:')
    for (const f of failures) console.log(`  - ${f}`)
  }
  return failures.length > 0
}

/** GET /health's status, or why there was none. */
function health (srv) {
  return fetch(`${srv.url}/health`, { signal: AbortSignal.timeout(10_000) })
    .then(async (r) => { await r.arrayBuffer(); return r.status }, (e) => `${e.name}: ${e.cause?.code ?? e.message}`)
}

/** Whether a health answer says the server is gone: refusing connections, or silent. */
function gone (status) {
  return /ECONNREFUSED|TimeoutError/.test(String(status))
}

/** A close with a code docs/protocol.md gives for refused input. */
function isRefusal (outcome) {
  return DOCUMENTED_CLOSES.has(Number(/^close (\d+)$/.exec(outcome)?.[1]))
}

/** An outcome the protocol does not give for any input: a fault of the server. */
function isSuspect (outcome) {
  return !['accepted', 'denied', 'skipped'].includes(outcome) && !isRefusal(outcome)
}

function printOutcomes (results) {
  const done = results.filter(Boolean)
  const outcomes = [...new Set(done.map((r) => r.outcome))].sort()
  const mutations = [...new Set(done.map((r) => r.mutation))]
  const table = mutations.map((m) => {
    const row = { mutation: m }
    for (const o of outcomes) row[o] = done.filter((r) => r.mutation === m && r.outcome === o).length || ''
    const answers = done.filter((r) => r.mutation === m).map((r) => r.answers)
    row['max answers'] = Math.max(...answers)
    return row
  })
  const totals = { mutation: 'all' }
  for (const o of outcomes) totals[o] = done.filter((r) => r.outcome === o).length
  totals['max answers'] = Math.max(...done.map((r) => r.answers))
  table.push(totals)
  console.log('\nFrames by mutation and outcome ("answers": messages the room sent the fuzzing connection in reply to one frame):')
  console.table(table)
  const byRole = ROLES.map((role) => {
    const row = { role }
    for (const o of outcomes) row[o] = done.filter((r) => r.role === role && r.outcome === o).length || ''
    return row
  })
  console.table(byRole)
}

function printRooms (reports, rooms) {
  console.log('\nRooms after the run:')
  console.table(reports.map((r) => ({
    room: r.room,
    'honest chars': r.expectedLength,
    'honest content': r.honest,
    'refused frames changed nothing': r.exact,
    'viewer content': r.viewerContent,
    works: r.works,
    'provider reconnects': r.providerReconnects,
    'fuzz reconnects': rooms.find((x) => x.name === r.room).lanes.map((l) => `${l.role[0]}${l.reconnects}`).join(' ')
  })))
}

