// The previews section of scripts/bench: `render` per megapixel through the previews worker
// (wasm, under `wrangler dev -c previews/wrangler.toml` alone, on loopback) beside the same
// function run natively (previews/examples/render_bench.rs), on the same source bytes.
//
//   node benches/previews.mjs --native BIN --worker-dir DIR [--reps N]
//
// BIN is the built render_bench example; DIR a checkout with previews/build and
// previews/wrangler.toml (scripts/bench passes its frozen copy). Prints one table and writes it
// as JSON to target/bench-results/previews.json.

import { spawn, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const args = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : fallback
}
const native = opt('--native')
const workerDir = opt('--worker-dir', ROOT)
const reps = Number(opt('--reps', '5'))
if (!native) throw new Error('--native BIN is required')

const sources = fs.mkdtempSync(path.join(os.tmpdir(), 'tandemx-previews-bench-'))
process.on('exit', () => fs.rmSync(sources, { recursive: true, force: true }))

// Native: the example makes the sources, writes them for the worker, and times `render`.
const nativeRows = execFileSync(native, ['--reps', String(reps), '--write', sources], { encoding: 'utf8' })
  .trim().split('\n').map((line) => JSON.parse(line))

function freePort () {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

const port = await freePort()
const inspector = await freePort()
const wrangler = path.join(ROOT, 'node_modules', '.bin', 'wrangler')
const child = spawn(wrangler, [
  'dev', '-c', 'previews/wrangler.toml', '--ip', '127.0.0.1', '--port', String(port),
  '--inspector-port', String(inspector), '--log-level', 'warn'
], {
  cwd: workerDir,
  detached: true,
  stdio: ['ignore', 'pipe', 'pipe'],
  env: { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' }
})
let logs = ''
child.stdout.on('data', (d) => { logs += d })
child.stderr.on('data', (d) => { logs += d })
const stop = () => { try { process.kill(-child.pid, 'SIGTERM') } catch {} }
process.on('exit', stop)

const url = `http://127.0.0.1:${port}`
const post = (query, type, body) =>
  fetch(`${url}/render?${query}`, { method: 'POST', headers: { 'content-type': type }, body })

// Ready once a bad request is answered (400): the worker is loaded.
const started = Date.now()
for (;;) {
  try {
    const res = await post('w=1', 'image/png', 'x')
    await res.arrayBuffer()
    if (res.status === 400) break
  } catch {}
  if (Date.now() - started > 60_000) throw new Error(`previews worker not ready:\n${logs.slice(-4000)}`)
  await new Promise((resolve) => setTimeout(resolve, 200))
}

const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]

// The round trip of a request the worker refuses at once: HTTP and wrangler's proxy on
// loopback, subtracted from the render figures.
const floor = []
for (let i = 0; i < 20; i++) {
  const t = performance.now()
  await (await post('w=1', 'image/png', 'x')).arrayBuffer()
  floor.push(performance.now() - t)
}
const floorMs = median(floor)

const rows = []
for (const row of nativeRows) {
  const body = fs.readFileSync(path.join(sources, row.source))
  const type = row.source.endsWith('.png') ? 'image/png' : 'image/jpeg'
  const times = []
  for (let i = 0; i < reps; i++) {
    const t = performance.now()
    const res = await post(`w=${row.w}&format=${row.format}`, type, body)
    const out = await res.arrayBuffer()
    times.push(performance.now() - t)
    if (res.status !== 200) throw new Error(`${row.source} -> ${res.status} ${Buffer.from(out).toString()}`)
  }
  const workerMs = Math.max(0, median(times) - floorMs)
  rows.push({ ...row, worker_ms: workerMs, worker_ms_per_mp: workerMs / row.megapixels, native_ms_per_mp: row.native_ms / row.megapixels })
}
stop()

const pad = (s, n) => String(s).padStart(n)
console.log(`\npreviews: render per megapixel, wasm worker (wrangler dev, loopback; its ${floorMs.toFixed(1)} ms round trip subtracted) beside native, median of ${reps}`)
console.log(`${'source'.padEnd(16)}${pad('MB', 7)}${pad('MP', 7)}  ${'output'.padEnd(10)}${pad('worker ms', 11)}${pad('ms/MP', 8)}${pad('native ms', 11)}${pad('ms/MP', 8)}${pad('wasm/native', 13)}${pad('peak heap MB', 14)}`)
for (const r of rows) {
  console.log(`${r.source.padEnd(16)}${pad((r.source_bytes / 1e6).toFixed(2), 7)}${pad(r.megapixels.toFixed(1), 7)}  ${`${r.w} ${r.format}`.padEnd(10)}${pad(r.worker_ms.toFixed(0), 11)}${pad(r.worker_ms_per_mp.toFixed(1), 8)}${pad(r.native_ms.toFixed(0), 11)}${pad(r.native_ms_per_mp.toFixed(1), 8)}${pad((r.worker_ms / r.native_ms).toFixed(2), 13)}${pad((r.peak_heap_bytes / 1048576).toFixed(1), 14)}`)
}
const out = path.join(ROOT, 'target', 'bench-results')
fs.mkdirSync(out, { recursive: true })
fs.writeFileSync(path.join(out, 'previews.json'), JSON.stringify({ floor_ms: floorMs, reps, rows }, null, 2))
process.exit(0)
