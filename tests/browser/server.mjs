// Starts TandemX under `wrangler dev` with the demo app (client/dist) as static assets, for the
// browser tests. Modelled on tests/e2e/server.mjs, which cannot pass `--assets`.

import { spawn, spawnSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, retryOnPortClash } from '../e2e/server.mjs'

/** Repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** The built demo app. */
export const DIST = path.join(REPO_ROOT, 'client', 'dist')

const WRANGLER = path.join(REPO_ROOT, 'node_modules', '.bin', 'wrangler')
const READY_TIMEOUT_MS = 90_000

/** @param {number} ms */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))


const env = () => ({
  ...process.env,
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  WRANGLER_SEND_METRICS: 'false',
  CI: 'true',
  NO_COLOR: '1'
})

// Process groups to kill if the test process exits without stopping them.
const live = new Set()
const dirs = new Set()
process.on('exit', () => {
  for (const pgid of live) { try { process.kill(-pgid, 'SIGKILL') } catch {} }
  for (const dir of dirs) { try { fs.rmSync(dir, { recursive: true, force: true }) } catch {} }
})

/** Builds the SDK (client/lib) and the demo (client/dist) unless both are there. */
export function ensureDemoBuilt () {
  const sdk = path.join(REPO_ROOT, 'client', 'lib', 'index.js')
  if (fs.existsSync(path.join(DIST, 'index.html')) && fs.existsSync(sdk)) return
  const res = spawnSync('npm', ['--prefix', path.join(REPO_ROOT, 'client'), 'run', 'build'], { stdio: 'inherit', env: env() })
  if (res.status !== 0) throw new Error('building the demo app failed (npm --prefix client run build)')
}

/**
 * Starts wrangler dev serving the worker and the demo app. Secrets are fresh per run; DEV_MODE
 * turns on POST /v1/dev/token, the demo's development sign-in.
 * @param {{ vars?: Record<string, string> }} [opts]
 */
export async function startDemoServer ({ vars = {} } = {}) {
  ensureDemoBuilt()
  const persist = fs.mkdtempSync(path.join(os.tmpdir(), 'tandemx-browser-'))
  dirs.add(persist)
  const migrate = spawnSync(WRANGLER, ['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', persist],
    { cwd: REPO_ROOT, env: env(), encoding: 'utf8', timeout: 180_000 })
  if (migrate.status !== 0) throw new Error(`D1 migrations failed:\n${migrate.stdout}\n${migrate.stderr}`)
  return retryOnPortClash(() => launch(persist, vars))
}

async function launch (persist, vars) {
  const port = await freePort()
  const inspector = await freePort()
  const allVars = {
    TOKEN_SECRET: `browser-token-${crypto.randomBytes(24).toString('hex')}`,
    ADMIN_SECRET: `browser-admin-${crypto.randomBytes(24).toString('hex')}`,
    DEV_MODE: 'true',
    ...vars
  }
  const args = [
    'dev', '--config', 'wrangler.toml', '--config', 'previews/wrangler.toml',
    '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector),
    '--persist-to', persist, '--assets', DIST, '--log-level', 'info'
  ]
  for (const [k, v] of Object.entries(allVars)) args.push('--var', `${k}:${v}`)
  const child = spawn(WRANGLER, args, { cwd: REPO_ROOT, env: env(), stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  const pgid = child.pid
  live.add(pgid)
  let logs = ''
  child.stdout.on('data', (d) => { logs += d })
  child.stderr.on('data', (d) => { logs += d })
  let exited = null
  const exit = new Promise((resolve) => child.on('exit', (code, signal) => { exited = { code, signal }; resolve() }))

  const url = `http://127.0.0.1:${port}`
  const started = Date.now()
  for (;;) {
    if (exited !== null) throw new Error(`wrangler exited (${JSON.stringify(exited)}):\n${logs.slice(-4000)}`)
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5_000) })
      await res.arrayBuffer()
      if (res.ok) break
    } catch {}
    if (Date.now() - started > READY_TIMEOUT_MS) {
      try { process.kill(-pgid, 'SIGKILL') } catch {}
      throw new Error(`server not ready after ${READY_TIMEOUT_MS} ms:\n${logs.slice(-4000)}`)
    }
    await sleep(200)
  }

  return {
    url,
    adminSecret: allVars.ADMIN_SECRET,
    /** The local D1 and R2 state (for `d1Execute` of tests/e2e/server.mjs). */
    persistDir: persist,
    logs: () => logs,
    async stop () {
      try { process.kill(-pgid, 'SIGTERM') } catch {}
      const timer = sleep(10_000)
      await Promise.race([exit, timer])
      try { process.kill(-pgid, 'SIGKILL') } catch {}
      live.delete(pgid)
    }
  }
}
