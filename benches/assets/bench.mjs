// Asset transfer throughput: uploads and downloads through TandemX (one-request uploads, and
// uploads in parallel parts) beside the same bytes put into and read from the local R2 binding
// directly by a worker that does nothing else (benches/assets/direct-r2.mjs), in one run on
// this machine. Loopback only; every loop is bounded.
//
//   node benches/assets/bench.mjs [--quick]

import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createProject, freePort, startServer, waitFor, REPO_ROOT } from '../../tests/e2e/server.mjs'

const quick = process.argv.includes('--quick')
const MiB = 1024 * 1024
const WRANGLER = path.join(REPO_ROOT, 'node_modules', '.bin', 'wrangler')

const cases = quick
  ? [{ name: '1 MiB, one request', size: MiB, runs: 3 }, { name: '16 MiB, in parts', size: 16 * MiB, runs: 1, parts: true }]
  : [
      { name: '1 MiB, one request', size: MiB, runs: 10 },
      { name: '16 MiB, one request', size: 16 * MiB, runs: 4 },
      { name: '64 MiB, 8 MiB parts x3', size: 64 * MiB, runs: 2, parts: true }
    ]

async function startDirect () {
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandemx-bench-r2-'))
  const child = spawn(WRANGLER, ['dev', '--config', 'benches/assets/wrangler.toml', '--ip', '127.0.0.1', '--port', String(port), '--persist-to', dir, '--inspector-port', String(await freePort())],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } })
  const url = `http://127.0.0.1:${port}`
  await waitFor(async () => (await fetch(`${url}/ping`).catch(() => null))?.status === 404, { timeout: 60_000, description: 'direct R2 worker' })
  return { url, stop: () => { try { process.kill(-child.pid, 'SIGTERM') } catch {} ; fs.rmSync(dir, { recursive: true, force: true }) } }
}

const mbps = (bytes, ms) => (bytes / MiB) / (ms / 1000)

async function timed (fn) {
  const t = performance.now()
  await fn()
  return performance.now() - t
}

async function tandemxUpload (server, project, key, bytes, parts) {
  const sha = createHash('sha256').update(bytes).digest('hex')
  const auth = { authorization: `Bearer ${key}` }
  const base = `${server.url}/v1/projects/${project}`
  if (!parts) {
    const res = await fetch(`${base}/assets?name=bench.bin`, { method: 'POST', headers: { ...auth, 'tandemx-sha256': sha }, body: bytes })
    if (res.status !== 201) throw new Error(`upload: ${res.status} ${await res.text()}`)
    return (await res.json()).id
  }
  const partSize = 8 * MiB
  const res = await fetch(`${base}/uploads`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'bench.bin', size: bytes.length, sha256: sha, part_size: partSize }) })
  const { upload } = await res.json()
  let next = 1
  const worker = async () => {
    while (next <= upload.parts) {
      const n = next++
      const r = await fetch(`${base}/uploads/${upload.id}/parts/${n}`, { method: 'PUT', headers: auth, body: bytes.subarray((n - 1) * partSize, n * partSize) })
      if (r.status !== 200) throw new Error(`part ${n}: ${r.status}`)
    }
  }
  await Promise.all([worker(), worker(), worker()])
  const done = await fetch(`${base}/uploads/${upload.id}/complete`, { method: 'POST', headers: auth })
  if (done.status !== 201) throw new Error(`complete: ${done.status} ${await done.text()}`)
  return (await done.json()).id
}

async function drain (res) {
  let n = 0
  for await (const chunk of res.body) n += chunk.length
  return n
}

const rows = []
const server = await startServer({ vars: { ASSET_DIRECT_UPLOAD_BYTES: String(32 * MiB) } })
const direct = await startDirect()
try {
  const { project, key } = await createProject(server, 'Bench')
  for (const c of cases) {
    const up = { tandemx: 0, direct: 0 }
    const down = { tandemx: 0, direct: 0 }
    for (let i = 0; i < c.runs; i++) {
      // Fresh bytes each run: an upload of bytes stored already would cost nothing.
      const bytes = randomBytes(c.size)
      let id
      up.tandemx += await timed(async () => { id = await tandemxUpload(server, project, key, bytes, c.parts) })
      const keyName = `bench-${i}-${c.size}`
      up.direct += await timed(async () => {
        const r = await fetch(`${direct.url}/${keyName}`, { method: 'PUT', body: bytes })
        if (r.status !== 201) throw new Error(`direct put: ${r.status}`)
      })
      down.tandemx += await timed(async () => {
        const r = await fetch(`${server.url}/v1/projects/${project}/assets/${id}/content`, { headers: { authorization: `Bearer ${key}` } })
        if (await drain(r) !== c.size) throw new Error('short download')
      })
      down.direct += await timed(async () => {
        const r = await fetch(`${direct.url}/${keyName}`)
        if (await drain(r) !== c.size) throw new Error('short direct download')
      })
    }
    const total = c.size * c.runs
    rows.push({ case: `upload ${c.name}`, tandemx: mbps(total, up.tandemx), direct: mbps(total, up.direct) })
    rows.push({ case: `download ${c.name.replace(/, (one request|in parts|8 MiB parts x3)/, '')}`, tandemx: mbps(total, down.tandemx), direct: mbps(total, down.direct) })
  }
} finally {
  direct.stop()
  await server.stop()
}

console.log('\nAsset transfers, MB/s (MiB per second; higher is better), same machine, same run')
console.log('| transfer | tandemx | R2 binding direct | tandemx / direct |')
console.log('|---|---:|---:|---:|')
for (const r of rows) {
  console.log(`| ${r.case} | ${r.tandemx.toFixed(1)} | ${r.direct.toFixed(1)} | ${(r.tandemx / r.direct).toFixed(2)} |`)
}
fs.mkdirSync(path.join(REPO_ROOT, 'target', 'bench-results'), { recursive: true })
fs.writeFileSync(path.join(REPO_ROOT, 'target', 'bench-results', 'assets.json'), JSON.stringify(rows, null, 2))
process.exit(0)
