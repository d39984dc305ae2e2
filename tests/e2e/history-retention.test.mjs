// History retention: old log entries and automatic versions go, named versions and a base stay,
// and reading the document before the kept history answers 410. The server keeps 3 seconds of
// history by default (HISTORY_RETENTION_SECONDS) so that the test does not wait for days.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { IS_REFERENCE, createProject, sleep, startServer, waitFor } from './server.mjs'
import { destroyAll, roomName } from './helpers.mjs'

const SKIP = IS_REFERENCE && 'the reference server has no history'

let server
let project
let key

async function call (method, path, json) {
  const res = await fetch(`${server.url}/v1/projects/${project}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: json === undefined ? undefined : JSON.stringify(json),
    signal: AbortSignal.timeout(20_000)
  })
  return { status: res.status, body: await res.json() }
}

before(async () => {
  if (SKIP) return
  server = await startServer({ vars: { AUTO_VERSION_SECONDS: '1', HISTORY_RETENTION_SECONDS: '3' } })
  ;({ project, key } = await createProject(server, 'Retention'))
}, { timeout: 150_000 })

after(async () => {
  destroyAll()
  if (server) await server.stop()
})

test('retention prunes the log and automatic versions behind a base, and keeps named versions', { skip: SKIP, timeout: 90_000 }, async () => {
  const room = roomName('retention')
  const versions = async () => (await call('GET', `/documents/${room}/versions`)).body.versions
  const edit = async (text) => {
    const res = await call('POST', `/documents/${room}/edits`, { ops: [{ op: 'text.insert', path: ['t'], index: 0, text }] })
    assert.equal(res.status, 200, JSON.stringify(res.body))
  }
  /** Edits, then waits for the automatic version that holds the edit. */
  const round = async (text) => {
    await edit(text)
    const head = (await call('GET', `/documents/${room}/history`)).body.updates.at(-1).seq
    await waitFor(async () => (await versions()).some((v) => v.kind === 'auto' && v.seq >= head), { timeout: 15_000, description: `automatic version after "${text}"` })
    return (await versions()).find((v) => v.kind === 'auto' && v.seq >= head)
  }

  // A named version of the still empty document: older than the base, it is kept, but the
  // log after it is not, so it must not pass for the document at a pruned instant.
  assert.equal((await call('POST', '/documents', { name: room })).status, 201)
  const empty = await call('POST', `/documents/${room}/versions`, { name: 'empty' })
  assert.equal(empty.status, 201)
  const first = await round('a')
  const named = await call('POST', `/documents/${room}/versions`, { name: 'keep me' })
  assert.equal(named.status, 201)
  const second = await round('b')
  const startedAt = (await call('GET', `/documents/${room}/history`)).body.updates[0].at
  await sleep(4000)
  // The next automatic version applies retention: `second` is the newest version older than
  // the cutoff, so it becomes the base; the log up to it and the older automatic version go.
  const third = await round('c')
  await waitFor(async () => !(await versions()).some((v) => v.id === first.id), { timeout: 10_000, description: 'the old automatic version pruned' })
  const kept = await versions()
  assert.ok(kept.some((v) => v.id === named.body.id), 'named versions stay')
  assert.ok(kept.some((v) => v.id === second.id), 'the base stays')
  assert.ok(kept.some((v) => v.id === third.id))
  const log = (await call('GET', `/documents/${room}/history`)).body
  assert.ok(log.earliest.seq > second.seq, JSON.stringify(log.earliest))
  assert.ok(log.updates.every((u) => u.seq > second.seq))
  // Before the base the document can no longer be rebuilt; from the base on it can.
  const gone = await call('GET', `/documents/${room}/history/at?t=${startedAt}`)
  assert.equal(gone.status, 410)
  assert.equal(gone.body.error, 'history-pruned')
  assert.ok(kept.some((v) => v.id === empty.body.id), 'named versions stay')
  // From the base's own instant on, the base plus the kept log rebuild the document.
  const atBase = await call('GET', `/documents/${room}/history/at?t=${second.at}`)
  assert.equal(atBase.status, 200, JSON.stringify(atBase.body))
  assert.equal(atBase.body.content.t, 'ba')
  const now = await call('GET', `/documents/${room}/history/at?t=${Date.now()}`)
  assert.equal(now.status, 200)
  assert.equal(now.body.content.t, 'cba')
  // A project that keeps everything prunes nothing.
  assert.equal((await call('PATCH', '', { history_retention_days: 0 })).status, 200)
  await sleep(4000)
  const fourth = await round('d')
  const all = await versions()
  assert.ok(all.some((v) => v.id === second.id) && all.some((v) => v.id === fourth.id))
  assert.ok((await call('GET', `/documents/${room}/history`)).body.earliest.seq <= second.seq + 1)
})

test('a dormant document is pruned by the daily retention run, with no new change', { skip: SKIP, timeout: 90_000 }, async () => {
  // This server runs retention every 3 s (RETENTION_CHECK_SECONDS) instead of daily.
  const dormant = await startServer({ vars: { AUTO_VERSION_SECONDS: '1', HISTORY_RETENTION_SECONDS: '3', RETENTION_CHECK_SECONDS: '3' } })
  try {
    const { project: p, key: k } = await createProject(dormant, 'Dormant retention')
    const room = roomName('dormant')
    const req = async (method, path, json) => {
      const res = await fetch(`${dormant.url}/v1/projects/${p}${path}`, {
        method,
        headers: { authorization: `Bearer ${k}`, 'content-type': 'application/json' },
        body: json === undefined ? undefined : JSON.stringify(json),
        signal: AbortSignal.timeout(20_000)
      })
      return res.json()
    }
    const versions = async () => (await req('GET', `/documents/${room}/versions`)).versions
    for (const text of ['a', 'b']) {
      await req('POST', `/documents/${room}/edits`, { ops: [{ op: 'text.insert', path: ['t'], index: 0, text }] })
      const head = (await req('GET', `/documents/${room}/history`)).updates.at(-1).seq
      await waitFor(async () => (await versions()).some((v) => v.kind === 'auto' && v.seq >= head), { timeout: 15_000, description: `automatic version after "${text}"` })
    }
    const before = (await req('GET', `/documents/${room}/history`)).earliest.seq
    // No change from now on: only the retention run can move the earliest kept entry.
    // Every entry up to the base version goes: the earliest kept entry moves on, or none is left.
    const pruned = async () => {
      const { earliest } = await req('GET', `/documents/${room}/history`)
      return earliest === null || earliest.seq > before
    }
    await waitFor(pruned, { timeout: 30_000, interval: 1000, description: 'the log pruned while the document is dormant' })
    const content = await req('GET', `/documents/${room}`)
    assert.equal(content.content.t, 'ba', 'the document itself is untouched')
  } finally {
    await dormant.stop()
  }
})
