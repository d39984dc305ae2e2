// Test harness: starts the TandemX worker under `wrangler dev` (or, with
// TANDEMX_E2E_SERVER=reference, the stock @y/websocket-server) and controls its
// lifecycle: graceful stop, kill -9 of the whole process tree, restart on the
// same persistence directory.

import { spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** Repository root (two levels above this file). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** True when the tests run against the in-memory reference server. */
export const IS_REFERENCE = process.env.TANDEMX_E2E_SERVER === 'reference'

const WRANGLER = path.join(REPO_ROOT, 'node_modules', '.bin', 'wrangler')
const REFERENCE_SERVER = path.join(REPO_ROOT, 'node_modules', '@y', 'websocket-server', 'src', 'server.js')

/**
 * Secrets every test server runs with (as `--var`s, which is how `.dev.vars` reaches the
 * worker too). DEV_MODE turns on POST /v1/dev/token, which the harness uses to mint an owner
 * token for every room of the development project.
 */
export const TEST_SECRETS = {
  TOKEN_SECRET: `e2e-token-${crypto.randomBytes(24).toString('hex')}`,
  ADMIN_SECRET: `e2e-admin-${crypto.randomBytes(24).toString('hex')}`,
  DEV_MODE: 'true',
  // Test receivers listen on 127.0.0.1, which webhooks refuse without this switch.
  WEBHOOK_ALLOW_PRIVATE: 'true'
}

/** wsUrl -> an owner token for every room of the development project on that server. */
const defaultTokens = new Map()

/**
 * The default token of the server whose wsUrl starts `url`, or undefined (reference server,
 * unknown URL).
 * @param {string} url
 */
export function tokenFor (url) {
  for (const [wsUrl, token] of defaultTokens) {
    if (url.startsWith(wsUrl) || url.startsWith(wsUrl.replace(/^ws/, 'http'))) return token
  }
  return undefined
}

/**
 * Mints a development token: POST /v1/dev/token.
 * @param {string} url the server's http URL
 * @param {{ room: string, role?: string, name?: string, color?: string, sub?: string }} body
 */
export async function devToken (url, body) {
  const res = await fetch(`${url}/v1/dev/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  const json = await res.json()
  if (res.status !== 201) throw new Error(`dev token: ${res.status} ${JSON.stringify(json)}`)
  return json.token
}

/**
 * Creates a project with the admin secret of `server`; returns `{ project, key }` (the project
 * id and its owner API key secret).
 * @param {{ url: string, adminSecret: string }} server
 * @param {string} name
 */
export async function createProject (server, name) {
  const res = await fetch(`${server.url}/v1/projects`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.adminSecret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name })
  })
  const made = await res.json()
  if (res.status !== 201) throw new Error(`create project: ${res.status} ${JSON.stringify(made)}`)
  return { project: made.project.id, key: made.key.secret }
}

/**
 * Mints a room token with the project's key: `POST /v1/projects/{project}/tokens`, role editor
 * unless `body` names one. Answers the minted token's JSON (`token`, `expires_at`, ...); throws
 * with the answer unless it is a 201.
 * @param {{ url: string }} server
 * @param {{ project: string, key: string }} project
 * @param {{ sub: string, room: string, role?: string, ttl_seconds?: number }} body
 */
export async function mintToken (server, { project, key }, body) {
  const res = await fetch(`${server.url}/v1/projects/${project}/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ role: 'editor', ...body })
  })
  const json = await res.json()
  if (res.status !== 201) throw new Error(`mint token: ${res.status} ${JSON.stringify(json)}`)
  return json
}

const READY_TIMEOUT_MS = 60_000
const STOP_TIMEOUT_MS = 15_000

/**
 * Runs SQL on a running server's local D1 directly, behind the worker's back (as another
 * location's worker or an operator would change it).
 * @param {{ persistDir: string }} server
 * @param {string} sql
 */
export async function d1Execute (server, sql) {
  return run(WRANGLER, ['d1', 'execute', 'DB', '--local', '--persist-to', server.persistDir, '--command', sql], { env: childEnv() })
}

/**
 * Calls `start(attempt)`, which finds free ports and starts a server on them, again (up to three
 * attempts) when a port was taken by another process between the check and the server's bind:
 * test files run in parallel.
 * @template T
 * @param {(attempt: number) => Promise<T>} start
 * @returns {Promise<T>}
 */
export async function retryOnPortClash (start) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(attempt)
    } catch (err) {
      if (attempt >= 3 || !/Address already in use/.test(err.message)) throw err
    }
  }
}

/** @param {number} ms */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Polls `fn` until it returns a truthy value (or a promise of one) and returns
 * that value. Exceptions thrown by `fn` count as "not yet".
 *
 * @template T
 * @param {() => T | Promise<T>} fn
 * @param {{ timeout?: number, interval?: number, description?: string | (() => string) }} [opts]
 * @returns {Promise<T>}
 */
export async function waitFor (fn, { timeout = 10_000, interval = 20, description } = {}) {
  const started = Date.now()
  let lastError = null
  let lastValue
  for (;;) {
    try {
      lastValue = await fn()
      if (lastValue) return lastValue
      lastError = null
    } catch (err) {
      lastError = err
    }
    if (Date.now() - started >= timeout) {
      const what = typeof description === 'function' ? description() : description || fn.toString().slice(0, 200)
      const detail = lastError
        ? `last error: ${lastError && lastError.stack ? lastError.stack : lastError}`
        : `last value: ${safeInspect(lastValue)}`
      throw new Error(`waitFor timed out after ${timeout} ms: ${what} (${detail})`)
    }
    await sleep(interval)
  }
}

function safeInspect (v) {
  try {
    const s = JSON.stringify(v)
    return s === undefined ? String(v) : s.slice(0, 500)
  } catch {
    return String(v)
  }
}

/** Returns a TCP port that was free a moment ago on 127.0.0.1. */
export function freePort () {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (srv.address())
      srv.close(() => resolve(port))
    })
  })
}

/** Collects process output (never truncated, so offsets into it stay valid). */
class LogBuffer {
  constructor () {
    this.text = ''
  }

  /** @param {string} chunk */
  push (chunk) {
    this.text += chunk
  }

  tail (n = 4000) {
    return this.text.slice(-n)
  }
}

// Process groups still alive; killed synchronously if the test process exits
// without stopping them (a crashed test must not leave workerd running).
const liveGroups = new Set()
// Persistence directories created here; removed at exit unless TANDEMX_E2E_KEEP is set.
const ownedDirs = new Set()
process.on('exit', () => {
  for (const pgid of liveGroups) {
    try { process.kill(-pgid, 'SIGKILL') } catch {}
  }
  if (!process.env.TANDEMX_E2E_KEEP) {
    for (const dir of ownedDirs) {
      try { fs.rmSync(dir, { recursive: true, force: true }) } catch {}
    }
  }
})

/**
 * Pids of the non-zombie processes in process group `pgid` (Linux /proc).
 * Falls back to `kill(-pgid, 0)` when /proc is unavailable.
 * @param {number} pgid
 * @returns {number[]}
 */
function groupMembers (pgid) {
  let entries
  try {
    entries = fs.readdirSync('/proc')
  } catch {
    try {
      process.kill(-pgid, 0)
      return [pgid]
    } catch {
      return []
    }
  }
  const members = []
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue
    let stat
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8')
    } catch {
      continue
    }
    // Format: pid (comm) state ppid pgrp ... ; comm may contain spaces/parens.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const state = rest[0]
    const pgrp = Number(rest[2])
    if (pgrp === pgid && state !== 'Z' && state !== 'X') members.push(Number(name))
  }
  return members
}

/**
 * @param {number} pgid
 * @param {number} timeout
 */
async function waitGroupGone (pgid, timeout) {
  const started = Date.now()
  while (groupMembers(pgid).length > 0) {
    if (Date.now() - started > timeout) return false
    await sleep(50)
  }
  return true
}

/**
 * Runs a command to completion, capturing output.
 * @param {string} cmd
 * @param {string[]} args
 * @param {{ env?: NodeJS.ProcessEnv, timeout?: number }} opts
 */
function run (cmd, args, { env, timeout = 120_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { out += d })
    const timer = setTimeout(() => {
      try { process.kill(-child.pid, 'SIGKILL') } catch {}
    }, timeout)
    child.on('error', (err) => { clearTimeout(timer); reject(err) })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else reject(new Error(`${path.basename(cmd)} ${args.join(' ')} failed (code ${code}, signal ${signal}):\n${out.slice(-4000)}`))
    })
  })
}

function childEnv (extra = {}) {
  return {
    ...process.env,
    CLOUDFLARE_CF_FETCH_ENABLED: 'false',
    WRANGLER_SEND_METRICS: 'false',
    CI: 'true',
    NO_COLOR: '1',
    ...extra
  }
}

/**
 * Starts the server and waits until it is ready.
 *
 * @param {{ persistDir?: string, vars?: Record<string, string>, reuse?: boolean }} [opts]
 *   `reuse: true` means persistDir has already been initialised by an earlier
 *   start (migrations applied), so the migration step is skipped.
 *   A persistDir created here is deleted when the test process exits (set
 *   TANDEMX_E2E_KEEP=1 to keep it for inspection).
 */
export async function startServer ({ persistDir, vars = {}, reuse = false, logLevel = 'info' } = {}) {
  if (!persistDir) {
    persistDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandemx-e2e-'))
    ownedDirs.add(persistDir)
  }
  // A retry finds the migrations already applied.
  return retryOnPortClash((attempt) => startServerOnce({ persistDir, vars, logLevel, reuse: reuse || attempt > 1 }))
}

async function startServerOnce ({ persistDir, vars, logLevel, reuse }) {
  const port = await freePort()
  const logs = new LogBuffer()

  let cmd, args, env, inspectorPort
  if (IS_REFERENCE) {
    cmd = process.execPath
    args = [REFERENCE_SERVER]
    env = childEnv({ HOST: '127.0.0.1', PORT: String(port) })
  } else {
    if (!reuse) {
      const out = await run(WRANGLER, ['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', persistDir], { env: childEnv() })
      logs.push(out)
    }
    inspectorPort = await freePort()
    cmd = WRANGLER
    args = [
      'dev',
      // The previews worker beside it, behind the service binding PREVIEWS.
      '--config', 'wrangler.toml',
      '--config', 'previews/wrangler.toml',
      '--ip', '127.0.0.1',
      '--port', String(port),
      '--inspector-port', String(inspectorPort),
      '--persist-to', persistDir,
      '--log-level', logLevel,
      // GET /__scheduled runs the cron handler (the asset sweep) on demand.
      '--test-scheduled'
    ]
    for (const [key, value] of Object.entries({ ...TEST_SECRETS, ...vars })) args.push('--var', `${key}:${value}`)
    env = childEnv()
  }

  const child = spawn(cmd, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  if (child.pid === undefined) {
    const err = await new Promise((resolve) => child.once('error', resolve))
    throw new Error(`could not start ${cmd}: ${err && err.message}`)
  }
  const pgid = child.pid
  liveGroups.add(pgid)
  child.stdout.setEncoding('utf8')
  child.stderr.setEncoding('utf8')
  child.stdout.on('data', (d) => logs.push(d))
  child.stderr.on('data', (d) => logs.push(d))
  let exited = null
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal }
      resolve(exited)
    })
  })
  child.on('error', (err) => logs.push(`\n[spawn error] ${err.stack || err}\n`))

  const url = `http://127.0.0.1:${port}`
  let stopped = false

  /** Waits until wrangler has exited and no process of its group is left. */
  async function reap (timeout) {
    let timer
    const t = new Promise((resolve) => { timer = setTimeout(resolve, timeout) })
    await Promise.race([exitPromise, t])
    clearTimeout(timer)
    const gone = await waitGroupGone(pgid, timeout)
    return exited !== null && gone
  }

  const handle = {
    url,
    wsUrl: `ws://127.0.0.1:${port}/rooms`,
    port,
    /** wrangler's inspector (Chrome DevTools protocol) for the worker, e.g. to profile it. */
    inspectorPort,
    persistDir,
    vars,
    logs: () => logs.text,
    /** Graceful shutdown: SIGTERM, then wait for the whole tree to exit. */
    async stop () {
      if (stopped) return
      stopped = true
      try { process.kill(pgid, 'SIGTERM') } catch {}
      if (!(await reap(STOP_TIMEOUT_MS))) {
        // wrangler did not take its children down: terminate the group, then force.
        try { process.kill(-pgid, 'SIGTERM') } catch {}
        if (!(await reap(5_000))) {
          try { process.kill(-pgid, 'SIGKILL') } catch {}
          await reap(STOP_TIMEOUT_MS)
        }
      }
      liveGroups.delete(pgid)
    },
    /** Crash: SIGKILL wrangler and its workerd children at once, wait until gone. */
    async kill9 () {
      stopped = true
      try { process.kill(-pgid, 'SIGKILL') } catch {}
      if (!(await reap(STOP_TIMEOUT_MS))) {
        throw new Error(`processes of group ${pgid} still alive after SIGKILL: ${groupMembers(pgid).join(', ')}`)
      }
      liveGroups.delete(pgid)
    },
    /** Start again on the same persistDir (after stop/kill9); returns a new handle. */
    async restart () {
      if (!stopped) await handle.stop()
      return startServer({ persistDir, vars, logLevel, reuse: true })
    }
  }

  try {
    await waitReady(handle, () => exited)
  } catch (err) {
    try { process.kill(-pgid, 'SIGKILL') } catch {}
    await reap(STOP_TIMEOUT_MS)
    liveGroups.delete(pgid)
    err.message += `\n--- server output (tail) ---\n${logs.tail()}`
    throw err
  }
  if (!IS_REFERENCE) {
    handle.adminSecret = { ...TEST_SECRETS, ...vars }.ADMIN_SECRET
    handle.token = await devToken(url, { room: '*', role: 'owner', sub: 'e2e-owner' })
    defaultTokens.set(handle.wsUrl, handle.token)
  }
  return handle
}

/**
 * @param {{ url: string, port: number }} handle
 * @param {() => null | { code: number | null, signal: string | null }} exited
 */
async function waitReady (handle, exited) {
  const started = Date.now()
  let last = 'no attempt yet'
  while (Date.now() - started < READY_TIMEOUT_MS) {
    const ex = exited()
    if (ex) throw new Error(`server exited before becoming ready (code ${ex.code}, signal ${ex.signal})`)
    try {
      if (IS_REFERENCE) {
        await tcpConnect(handle.port)
        return
      }
      const res = await fetch(`${handle.url}/health`, { signal: AbortSignal.timeout(5_000) })
      await res.arrayBuffer()
      if (res.status === 200) return
      last = `GET /health -> ${res.status}`
    } catch (err) {
      last = String(err && err.cause ? err.cause : err)
    }
    await sleep(100)
  }
  throw new Error(`server not ready after ${READY_TIMEOUT_MS} ms (${last})`)
}

/** @param {number} port */
function tcpConnect (port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port }, () => {
      sock.destroy()
      resolve()
    })
    sock.on('error', reject)
  })
}
