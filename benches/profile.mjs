// Where the worker's time goes: starts TandemX under `wrangler dev` (as the end-to-end tests
// do, rate limits lifted), replays the first N patches of an editing trace through one
// connection with one observer (at most 256 updates in flight, as the trace workload of
// scripts/bench), records a CPU profile of the worker through wrangler's inspector meanwhile,
// and prints the functions with the most self time (JavaScript and wasm, by name).
// With --joins J, the N patches are sent first, unprofiled, and what is profiled is J new
// clients joining the room one after another (connect → the server's SyncStep2), each timed.
// With --cold R, the N patches are sent first, then the server is restarted R times on the same
// storage, each time after a second without clients (as the cold loads of scripts/bench); what
// is profiled and timed is the first client joining the room after each restart (a second join,
// warm, is timed for comparison).
// With --one-update, the N patches are sent as one update (as the documents of the load workload).
// With --observers K, K more clients join before the replay and only receive (each update is
// then sent to K + 1 sockets: a fan-out).
// With --deflate, the clients offer permessage-deflate, as browsers do (and `ws` does by default);
// without it they do not, as the load generator of scripts/bench does not.
//
//   node benches/profile.mjs [--updates N] [--one-update] [--observers K] [--deflate] [--joins J | --cold R] [--no-profile] [--top K] [--out FILE.cpuprofile] [KEY=VALUE ...]
//
// KEY=VALUE become `wrangler dev --var`s (e.g. DURABILITY=relaxed). The .cpuprofile opens in
// Chrome DevTools (Performance) or any viewer of that format.
import fs from 'node:fs'
import path from 'node:path'
import zlib from 'node:zlib'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import { startServer } from '../tests/e2e/server.mjs'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const opts = { deflate: false, observers: 0, updates: 30000, joins: 0, cold: 0, profile: true, top: 40, out: null, trace: path.resolve(ROOT, '../shared/data/editing-traces/automerge-paper.json.gz') }
const vars = { RATE_MESSAGES_PER_SECOND: '1000000', RATE_BYTES_PER_SECOND: '1073741824' }
const argv = process.argv.slice(2)
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]
  if (a === '--updates') opts.updates = Number(argv[++i])
  else if (a === '--joins') opts.joins = Number(argv[++i])
  else if (a === '--cold') opts.cold = Number(argv[++i])
  else if (a === '--one-update') opts.oneUpdate = true
  else if (a === '--deflate') opts.deflate = true
  else if (a === '--observers') opts.observers = Number(argv[++i])
  else if (a === '--no-profile') opts.profile = false
  else if (a === '--top') opts.top = Number(argv[++i])
  else if (a === '--out') opts.out = argv[++i]
  else if (a === '--trace') opts.trace = argv[++i]
  else if (a.includes('=')) vars[a.slice(0, a.indexOf('='))] = a.slice(a.indexOf('=') + 1)
  else { console.error(`unknown argument ${a}`); process.exit(2) }
}

// The updates, made before anything is measured.
const trace = JSON.parse(zlib.gunzipSync(fs.readFileSync(opts.trace)))
const writer = new Y.Doc()
const text = writer.getText('text')
const updates = []
writer.on('update', (u) => updates.push(u))
outer: for (const txn of trace.txns) {
  for (const [pos, del, ins] of txn.patches) {
    writer.transact(() => {
      if (del) text.delete(pos, del)
      if (ins) text.insert(pos, ins)
    })
    if (updates.length >= opts.updates) break outer
  }
}
// --one-update: the same document sent as one update (as the documents of the load workload).
if (opts.oneUpdate) updates.splice(0, updates.length, Y.encodeStateAsUpdate(writer))
const frames = updates.map((u) => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 0)
  syncProtocol.writeUpdate(e, u)
  return encoding.toUint8Array(e)
})

let server = await startServer({ vars })
const roomName = `profile-${Date.now()}`
const roomUrl = () => `${server.wsUrl}/${roomName}?token=${server.token}`
let inspector = null
try {
  const open = (onMessage) => new Promise((resolve, reject) => {
    const ws = new WebSocket(roomUrl(), { perMessageDeflate: opts.deflate })
    ws.binaryType = 'arraybuffer'
    ws.on('open', () => resolve(ws))
    ws.on('error', reject)
    ws.on('message', (d) => onMessage(new Uint8Array(d)))
  })
  let received = 0
  let wake = null
  const sender = await open(() => {})
  const observer = await open((m) => {
    if (m[0] === 0 && m[1] === 2) {
      received++
      if (wake) { const w = wake; wake = null; w() }
    }
  })
  const extra = []
  for (let i = 0; i < opts.observers; i++) extra.push(await open(() => {}))

  // The profiler, through wrangler's inspector proxy (a new one after each restart). Self time
  // per function name is summed over every profile taken.
  let id = 0
  const pending = new Map()
  const call = (method, params = {}) => new Promise((resolve) => {
    pending.set(++id, resolve)
    inspector.send(JSON.stringify({ id, method, params }))
  })
  const attach = async () => {
    if (inspector) inspector.close()
    const targets = await (await fetch(`http://127.0.0.1:${server.inspectorPort}/json`)).json()
    const target = targets.find((t) => t.webSocketDebuggerUrl)
    inspector = new WebSocket(target.webSocketDebuggerUrl)
    await new Promise((resolve, reject) => { inspector.on('open', resolve); inspector.on('error', reject) })
    inspector.on('message', (d) => {
      const msg = JSON.parse(d)
      if (msg.id && pending.has(msg.id)) { pending.get(msg.id)(msg); pending.delete(msg.id) }
    })
  }
  const selfTime = new Map()
  const profiles = []
  const startProfile = async () => {
    if (!opts.profile) return
    await call('Profiler.enable')
    await call('Profiler.setSamplingInterval', { interval: 50 })
    await call('Profiler.start')
  }
  const stopProfile = async () => {
    if (!opts.profile) return
    const { result } = await call('Profiler.stop')
    const profile = result.profile
    profiles.push(profile)
    const byId = new Map(profile.nodes.map((n) => [n.id, n]))
    for (let i = 0; i < profile.samples.length; i++) {
      const f = byId.get(profile.samples[i]).callFrame
      const key = `${f.functionName || '(anonymous)'} ${f.url ? path.basename(f.url) : ''}`.trim()
      selfTime.set(key, (selfTime.get(key) || 0) + (profile.timeDeltas[i] || 0))
    }
  }
  await attach()

  const replay = async () => {
    let sent = 0
    while (sent < frames.length) {
      while (sent < frames.length && sent - received < 256) sender.send(frames[sent++])
      await new Promise((resolve) => { wake = resolve })
    }
    while (received < frames.length) await new Promise((resolve) => { wake = resolve })
  }
  let opened = []
  // One new client: connect, send an empty SyncStep1, wait for the server's SyncStep2.
  const join = () => new Promise((resolve, reject) => {
    const t0 = performance.now()
    const ws = new WebSocket(roomUrl(), { perMessageDeflate: opts.deflate })
    ws.binaryType = 'arraybuffer'
    ws.on('error', reject)
    ws.on('open', () => {
      opened.push(performance.now() - t0)
      const e = encoding.createEncoder()
      encoding.writeVarUint(e, 0)
      syncProtocol.writeSyncStep1(e, new Y.Doc())
      ws.send(encoding.toUint8Array(e))
    })
    ws.on('message', (d) => {
      const m = new Uint8Array(d)
      if (m[0] === 0 && m[1] === 1) {
        const took = performance.now() - t0
        ws.close()
        resolve(took)
      }
    })
  })
  const ms = (v) => v.toFixed(2)
  const summary = (times) => {
    const t = [...times].sort((a, b) => a - b)
    return `median ${ms(t[t.length >> 1])} ms, min ${ms(t[0])}, max ${ms(t[t.length - 1])}`
  }

  let per = frames.length
  let unit = 'update'
  const started = performance.now()
  if (opts.joins > 0) {
    await replay()
    for (let i = 0; i < 3; i++) await join()
    opened = []
    await startProfile()
    const times = []
    for (let i = 0; i < opts.joins; i++) times.push(await join())
    await stopProfile()
    per = opts.joins
    unit = 'join'
    console.log(`${opts.joins} joins of a room holding ${frames.length} updates: ${summary(times)}; ` +
      `connected (upgrade answered) after a median ${ms([...opened].sort((a, b) => a - b)[opened.length >> 1])} ms`)
  } else if (opts.cold > 0) {
    await replay()
    sender.close()
    observer.close()
    const cold = []
    const coldOpened = []
    const warm = []
    for (let r = 0; r < opts.cold; r++) {
      // The room idles for a moment first, as between its last client and its next one.
      await new Promise((resolve) => setTimeout(resolve, 1000))
      server = await server.restart()
      await attach()
      opened = []
      await startProfile()
      cold.push(await join())
      await stopProfile()
      coldOpened.push(opened[0])
      warm.push(await join())
    }
    per = opts.cold
    unit = 'cold join'
    console.log(`${opts.cold} restarts, then a join of a room holding ${frames.length} updates: ${summary(cold)} ` +
      `(upgrade answered after ${summary(coldOpened)}); the join after it: ${summary(warm)}`)
  } else {
    await startProfile()
    await replay()
    await stopProfile()
  }
  const secs = (performance.now() - started) / 1000
  if (!opts.profile) {
    console.log(`${per} ${unit}s in ${secs.toFixed(2)} s (${Math.round(per / secs)}/s); not profiled`)
  } else {
    if (opts.out) fs.writeFileSync(opts.out, JSON.stringify(profiles.length === 1 ? profiles[0] : profiles))
    const total = [...selfTime.values()].reduce((a, b) => a + b, 0)
    const idle = selfTime.get('(idle)') || 0
    const busy = total - idle
    console.log(`${per} ${unit}s in ${secs.toFixed(2)} s (${Math.round(per / secs)}/s); ` +
      `profiled ${(total / 1e3).toFixed(0)} ms, busy ${(busy / 1e3).toFixed(0)} ms = ${(busy / per).toFixed(1)} µs per ${unit}`)
    console.log(`self µs/${unit}   share  function`)
    for (const [k, v] of [...selfTime.entries()].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, opts.top)) {
      console.log(`${(v / per).toFixed(2).padStart(15)}  ${(100 * v / busy).toFixed(1).padStart(5)}%  ${k}`)
    }
  }
  sender.close()
  observer.close()
  for (const ws of extra) ws.close()
} finally {
  if (inspector) inspector.close()
  await server.stop()
}
process.exit(0)
