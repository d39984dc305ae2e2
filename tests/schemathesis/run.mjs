// Runs schemathesis against the OpenAPI document a real TandemX serves: starts the worker under
// `wrangler dev` (as the end-to-end tests do: fresh persistence directory, migrations, secrets
// as --vars), makes a fresh project with the admin secret and a few fixtures in it (a document
// with content, versions, a branch, webhook subscriptions to a local receiver, members, a thread
// with comments, reviews of the branch and notifications, assets (an image, ones to delete,
// restore and purge) and multipart uploads), then runs
// schemathesis with tests/schemathesis/schemathesis.toml and exits with its status.
//
//   node tests/schemathesis/run.mjs [--max-examples N] [--seed S] [-- extra schemathesis args]
//
// scripts/lib.sh's ensure_schemathesis installs the pinned schemathesis into
// target/schemathesis-venv; SCHEMATHESIS overrides the executable. Reports (JUnit, and the
// server's output) go to target/schemathesis/.

import { spawn } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { createHash } from 'node:crypto'
import { parseArgs } from 'node:util'
import { REPO_ROOT, createProject, startServer } from '../e2e/server.mjs'

const { values: opts, positionals: extra } = parseArgs({
  options: {
    'max-examples': { type: 'string' },
    seed: { type: 'string' }
  },
  allowPositionals: true
})

const SCHEMATHESIS = process.env.SCHEMATHESIS || path.join(REPO_ROOT, 'target', 'schemathesis-venv', 'bin', 'schemathesis')
const CONFIG = path.join(REPO_ROOT, 'tests', 'schemathesis', 'schemathesis.toml')
const REPORT_DIR = path.join(REPO_ROOT, 'target', 'schemathesis')
// The member whose inbox the inbox operations read, and the one the reviews ask.
const READER = 'st-reader'
const REVIEWER = 'st-reviewer'

if (!fs.existsSync(SCHEMATHESIS)) {
  console.error(`${SCHEMATHESIS} is missing: run \`source scripts/lib.sh && ensure_schemathesis\``)
  process.exit(2)
}
fs.mkdirSync(REPORT_DIR, { recursive: true })

/** A webhook receiver on 127.0.0.1 that accepts everything, so deliveries succeed locally. */
function startReceiver () {
  return new Promise((resolve) => {
    let received = 0
    const srv = http.createServer((req, res) => {
      req.resume()
      req.on('end', () => { received++; res.writeHead(204).end() })
    })
    srv.listen(0, '127.0.0.1', () => resolve({
      url: `http://127.0.0.1:${srv.address().port}/hook`,
      received: () => received,
      close: () => new Promise((resolve) => srv.close(resolve))
    }))
  })
}

// Schemathesis subscribes webhooks to host names it makes up ("http://a"); where no name server
// answers, each delivery's lookup waits out the resolver's timeouts inside the local runtime.
// One short try per lookup keeps those failures quick (glibc reads RES_OPTIONS).
process.env.RES_OPTIONS = 'timeout:1 attempts:1'
// The subscriptions point at 127.0.0.1, which is allowed only with the development switch.
const server = await startServer({ vars: { WEBHOOK_ALLOW_PRIVATE: 'true' } })
const receiver = await startReceiver()
let status = 1
try {
  const env = await fixtures()
  console.log(`schemathesis against ${server.url}/v1/openapi.json (project ${env.TX_PROJECT})`)
  status = await runSchemathesis(env)
} finally {
  fs.writeFileSync(path.join(REPORT_DIR, 'server.log'), server.logs())
  await server.stop()
  await receiver.close()
}
console.log(`\nreports and the server's output: target/schemathesis/ (${receiver.received()} webhook deliveries received)`)
process.exit(status)

/** Calls the API, as the user `subject` names when given; throws unless the answer has status `want`. */
async function api (method, route, { key, body, want, subject }) {
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' }
  if (subject) headers['tandemx-subject'] = subject
  const res = await fetch(`${server.url}${route}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await res.text()
  if (res.status !== want) throw new Error(`${method} ${route}: ${res.status} ${text}`)
  return JSON.parse(text)
}

/** Uploads `bytes` in one request as the asset `name`; throws unless it is made (201). */
async function uploadAsset (p, key, name, bytes, type) {
  const sha = createHash('sha256').update(bytes).digest('hex')
  const res = await fetch(`${server.url}${p}/assets?name=${encodeURIComponent(name)}&tags=fixture`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': type, 'tandemx-sha256': sha },
    body: bytes
  })
  const text = await res.text()
  if (res.status !== 201) throw new Error(`upload ${name}: ${res.status} ${text}`)
  return JSON.parse(text)
}

/** The project and everything the path parameters point at; returns the TX_* variables. */
async function fixtures () {
  const { project, key } = await createProject(server, 'schemathesis')
  const doomed = await createProject(server, 'schemathesis: to be deleted')
  const p = `/v1/projects/${project}`
  const document = 'st-doc'
  for (const name of [document, 'st-scratch']) {
    await api('POST', `${p}/documents`, { key, body: { name }, want: 201 })
  }
  await api('POST', `${p}/documents/${document}/edits`, {
    key,
    want: 200,
    body: {
      ops: [
        { op: 'text.insert', path: ['notes'], index: 0, text: 'Hello from the fixtures' },
        { op: 'map.set', path: ['board'], key: 'color', value: 'blue' },
        { op: 'array.push', path: ['log'], values: [{ what: 'created' }] }
      ]
    }
  })
  const version = await api('POST', `${p}/documents/${document}/versions`, { key, body: { name: 'fixture' }, want: 201 })
  const scratchVersion = await api('POST', `${p}/documents/${document}/versions`, { key, body: { name: 'scratch' }, want: 201 })
  await api('POST', `${p}/documents/${document}/branches`, { key, body: { name: 'st-branch' }, want: 201 })
  await api('POST', `${p}/documents/st-branch/edits`, {
    key,
    want: 200,
    body: { ops: [{ op: 'text.insert', path: ['notes'], index: 0, text: 'Branch: ' }] }
  })
  const hook = { url: receiver.url, events: ['*'] }
  const webhook = await api('POST', `${p}/webhooks`, { key, body: hook, want: 201 })
  const scratchWebhook = await api('POST', `${p}/webhooks`, { key, body: hook, want: 201 })
  const token = await api('POST', `${p}/tokens`, { key, body: { sub: 'schemathesis', room: '*', role: 'owner' }, want: 201 })
  // Conversations: members to mention and to ask for reviews, a thread on the document with a
  // comment (and a second one, and a second thread, to delete), reviews of the branch (one to
  // withdraw), and notifications for the reader (one to delete).
  for (const [sub, role] of [[READER, 'commenter'], [REVIEWER, 'editor']]) {
    await api('PUT', `${p}/members/${sub}`, { key, body: { role }, want: 201 })
  }
  const body = (text) => ({ content: [{ type: 'paragraph', children: [{ text }, { type: 'mention', user: READER }] }] })
  const threads = `${p}/documents/${document}/threads`
  const thread = await api('POST', threads, { key, body: { anchor: { type: 'document' }, body: body('Fixture thread for ') }, want: 201 })
  const scratchComment = await api('POST', `${threads}/${thread.id}/comments`, { key, body: { body: body('A comment to delete, for ') }, want: 201 })
  const scratchThread = await api('POST', threads, { key, body: { anchor: { type: 'point', x: 1, y: 2 }, body: body('A thread to delete, for ') }, want: 201 })
  const reviews = `${p}/documents/st-branch/reviews`
  const review = await api('POST', reviews, { key, body: { reviewers: [REVIEWER], comment: 'fixture' }, want: 201 })
  const scratchReview = await api('POST', reviews, { key, body: { reviewers: [REVIEWER] }, want: 201 })
  // Assets: an image (previews are made of images) that the reading and tagging operations
  // use, one to move to the trash, one in the trash to restore and one to purge; a multipart
  // upload of one part that stays open, and one to abort.
  const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000' +
    '1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082', 'hex')
  const asset = await uploadAsset(p, key, 'st-image.png', png, 'image/png')
  const scratchAsset = await uploadAsset(p, key, 'st-scratch.txt', Buffer.from('to be deleted'), 'text/plain')
  const trashed = []
  for (const name of ['st-restore.txt', 'st-purge.txt']) {
    const made = await uploadAsset(p, key, name, Buffer.from(`in the trash: ${name}`), 'text/plain')
    await api('DELETE', `${p}/assets/${made.id}`, { key, want: 200 })
    trashed.push(made.id)
  }
  const newUpload = (name) => api('POST', `${p}/uploads`, {
    key,
    want: 201,
    body: { name, size: 10, sha256: createHash('sha256').update('0123456789').digest('hex') }
  })
  const upload = await newUpload('st-upload.bin')
  const scratchUpload = await newUpload('st-abort.bin')
  const inbox = await api('GET', `${p}/inbox`, { key, subject: READER, want: 200 })
  if (inbox.notifications.length < 2) throw new Error(`the reader has ${inbox.notifications.length} notifications`)
  return {
    TX_ADMIN: server.adminSecret,
    TX_PROJECT: project,
    TX_KEY: key,
    TX_ROOM_TOKEN: token.token,
    TX_DOCUMENT: document,
    TX_VERSION: String(version.id),
    TX_BRANCH: 'st-branch',
    TX_WEBHOOK: webhook.id,
    TX_DOOMED_PROJECT: doomed.project,
    TX_DOOMED_KEY: doomed.key,
    TX_SCRATCH_DOCUMENT: 'st-scratch',
    TX_SCRATCH_VERSION: String(scratchVersion.id),
    TX_SCRATCH_WEBHOOK: scratchWebhook.id,
    TX_THREAD: String(thread.id),
    TX_COMMENT: String(thread.comments[0].id),
    TX_SCRATCH_THREAD: String(scratchThread.id),
    TX_SCRATCH_COMMENT: String(scratchComment.id),
    TX_REVIEW: String(review.id),
    TX_SCRATCH_REVIEW: String(scratchReview.id),
    TX_READER: READER,
    TX_REVIEWER: REVIEWER,
    TX_NOTIFICATION: String(inbox.notifications[0].id),
    TX_ASSET: asset.id,
    TX_SCRATCH_ASSET: scratchAsset.id,
    TX_RESTORE_ASSET: trashed[0],
    TX_PURGE_ASSET: trashed[1],
    TX_UPLOAD: upload.upload.id,
    TX_SCRATCH_UPLOAD: scratchUpload.upload.id
  }
}

/** Runs schemathesis to completion with the fixtures in its environment; resolves its status. */
function runSchemathesis (vars) {
  const args = [
    '--config-file', CONFIG,
    'run', `${server.url}/v1/openapi.json`,
    '--url', server.url,
    '--report', 'junit',
    '--report-dir', REPORT_DIR
  ]
  if (opts['max-examples']) args.push('--max-examples', opts['max-examples'])
  if (opts.seed) args.push('--seed', opts.seed)
  args.push(...extra)
  const hooks = path.join(REPO_ROOT, 'tests', 'schemathesis', 'hooks.py')
  const child = spawn(SCHEMATHESIS, args, { cwd: REPO_ROOT, stdio: 'inherit', env: { ...process.env, ...vars, SCHEMATHESIS_HOOKS: hooks } })
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))))
}
