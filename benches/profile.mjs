// Where the worker's time goes: starts TandemX under `wrangler dev` (as the end-to-end tests
// do, rate limits lifted), replays the first N patches of an editing trace through one
// connection with one observer (at most 256 updates in flight, as the trace workload of
// scripts/bench), records a CPU profile of the worker through wrangler's inspector meanwhile,
// and prints the functions with the most self time (JavaScript and wasm, by name).
// With --joins J, the N patches are sent first, unprofiled, and what is profiled is J new
// clients joining the room one after another (connect → the server's SyncStep2), each timed.
//
//   node benches/profile.mjs [--updates N] [--joins J] [--no-profile] [--top K] [--out FILE.cpuprofile] [KEY=VALUE ...]
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
const opts = { updates: 30000, joins: 0, profile: true, top: 40, out: null, trace: path.resolve(ROOT, '../shared/data/editing-traces/automerge-paper.json.gz') }
const vars = { RATE_MESSAGES_PER_SECOND: '1000000', RATE_BYTES_PER_SECOND: '1073741824' }
const argv = process.argv.slice(2)
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]
  if (a === '--updates') opts.updates = Number(argv[++i])
  else if (a === '--joins') opts.joins = Number(argv[++i])
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
const frames = updates.map((u) => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 0)
  syncProtocol.writeUpdate(e, u)
  return encoding.toUint8Array(e)
})

const server = await startServer({ vars })
try {
  const room = `${server.wsUrl}/profile-${Date.now()}?token=${server.token}`
  const open = (onMessage) => new Promise((resolve, reject) => {
    const ws = new WebSocket(room)
    ws.binaryType = 'arraybuffer'
    ws.on('open', () => resolve(ws))
    ws.on('error', reject)
    ws.on('message', (d) => onMessage(new Uint8Array(d)))
  })
  let received = 0
  let wake = null
  const sender = await open(() => {})
  await open((m) => {
    if (m[0] === 0 && m[1] === 2) {
      received++
      if (wake) { const w = wake; wake = null; w() }
    }
  })

  // The profiler, through wrangler's inspector proxy.
  const targets = await (await fetch(`http://127.0.0.1:${server.inspectorPort}/json`)).json()
  const target = targets.find((t) => t.webSocketDebuggerUrl)
  const inspector = new WebSocket(target.webSocketDebuggerUrl)
  await new Promise((resolve, reject) => { inspector.on('open', resolve); inspector.on('error', reject) })
  let id = 0
  const pending = new Map()
  inspector.on('message', (d) => {
    const msg = JSON.parse(d)
    if (msg.id && pending.has(msg.id)) { pending.get(msg.id)(msg); pending.delete(msg.id) }
  })
  const call = (method, params = {}) => new Promise((resolve) => {
    pending.set(++id, resolve)
    inspector.send(JSON.stringify({ id, method, params }))
  })
  const startProfile = async () => {
    if (!opts.profile) return
    await call('Profiler.enable')
    await call('Profiler.setSamplingInterval', { interval: 50 })
    await call('Profiler.start')
  }

  const replay = async () => {
    let sent = 0
    while (sent < frames.length) {
      while (sent < frames.length && sent - received < 256) sender.send(frames[sent++])
      await new Promise((resolve) => { wake = resolve })
    }
    while (received < frames.length) await new Promise((resolve) => { wake = resolve })
  }
  const opened = []
  // One new client: connect, send an empty SyncStep1, wait for the server's SyncStep2.
  const join = () => new Promise((resolve, reject) => {
    const t0 = performance.now()
    const ws = new WebSocket(room)
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

  let per = frames.length
  let unit = 'update'
  const started = performance.now()
  if (opts.joins > 0) {
    await replay()
    for (let i = 0; i < 3; i++) await join()
    await startProfile()
    const times = []
    for (let i = 0; i < opts.joins; i++) times.push(await join())
    times.sort((a, b) => a - b)
    opened.sort((a, b) => a - b)
    per = opts.joins
    unit = 'join'
    console.log(`${opts.joins} joins of a room holding ${frames.length} updates: ` +
      `median ${times[times.length >> 1].toFixed(2)} ms, min ${times[0].toFixed(2)}, max ${times[times.length - 1].toFixed(2)}; ` +
      `connected (upgrade answered) after a median ${opened[opened.length >> 1].toFixed(2)} ms`)
  } else {
    await startProfile()
    await replay()
  }
  const secs = (performance.now() - started) / 1000
  if (!opts.profile) {
    console.log(`${per} ${unit}s in ${secs.toFixed(2)} s (${Math.round(per / secs)}/s); not profiled`)
  } else {
    const { result } = await call('Profiler.stop')
    const profile = result.profile
    if (opts.out) fs.writeFileSync(opts.out, JSON.stringify(profile))

    // Self time per function name.
    const byId = new Map(profile.nodes.map((n) => [n.id, n]))
    const dt = new Map()
    for (let i = 0; i < profile.samples.length; i++) {
      const n = byId.get(profile.samples[i])
      const f = n.callFrame
      const key = `${f.functionName || '(anonymous)'} ${f.url ? path.basename(f.url) : ''}`.trim()
      dt.set(key, (dt.get(key) || 0) + (profile.timeDeltas[i] || 0))
    }
    const total = [...dt.values()].reduce((a, b) => a + b, 0)
    const idle = dt.get('(idle)') || 0
    const busy = total - idle
    console.log(`${per} ${unit}s in ${secs.toFixed(2)} s (${Math.round(per / secs)}/s); ` +
      `profiled ${(total / 1e3).toFixed(0)} ms, busy ${(busy / 1e3).toFixed(0)} ms = ${(busy / per).toFixed(1)} µs per ${unit}`)
    console.log(`self µs/${unit}   share  function`)
    for (const [k, v] of [...dt.entries()].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, opts.top)) {
      console.log(`${(v / per).toFixed(2).padStart(15)}  ${(100 * v / busy).toFixed(1).padStart(5)}%  ${k}`)
    }
  }
  inspector.close()
  sender.close()
} finally {
  await server.stop()
}
process.exit(0)
