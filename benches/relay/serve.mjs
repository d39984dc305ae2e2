// Serves the relay floor (relay.js) under `wrangler dev` for scripts/bench, as
// tests/e2e/serve.mjs serves TandemX: prints `READY <http url>` once it answers /health, stops
// (wrangler and its workerd processes) when stdin closes.
//
//   node benches/relay/serve.mjs [MODE=hibernate|accept]
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, '../..')

function freePort () {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)) })
  })
}

const port = await freePort()
const inspector = await freePort()
const persist = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-floor-'))
const args = ['dev', '--config', path.join(HERE, 'wrangler.toml'), '--ip', '127.0.0.1',
  '--port', String(port), '--inspector-port', String(inspector), '--persist-to', persist]
for (const kv of process.argv.slice(2)) args.push('--var', kv.replace('=', ':'))
const child = spawn(path.join(ROOT, 'node_modules', '.bin', 'wrangler'), args, {
  cwd: ROOT,
  detached: true,
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_SEND_METRICS: 'false', CI: 'true', NO_COLOR: '1' }
})
const exited = new Promise((resolve) => child.once('exit', resolve))

const url = `http://127.0.0.1:${port}`
for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${url}/health`)).ok) break
  } catch {}
  if (i > 1200) { console.error('relay floor did not start'); process.exit(1) }
  await new Promise((resolve) => setTimeout(resolve, 100))
}
console.log(`READY ${url}`)

process.stdin.resume()
process.stdin.on('end', async () => {
  try { process.kill(-child.pid, 'SIGTERM') } catch {}
  const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL') } catch {} }, 10_000)
  await exited
  clearTimeout(timer)
  fs.rmSync(persist, { recursive: true, force: true })
  process.exit(0)
})
