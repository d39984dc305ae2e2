// Identity and permissions end to end: the /v1 API, room tokens and their enforcement,
// with stock y-websocket providers and raw sockets against wrangler dev.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { IS_REFERENCE, TEST_SECRETS, devToken, startServer, waitFor, sleep } from './server.mjs'
import { Y, connectProvider, destroyAll, destroyProvider, openRaw, roomName, tryUpgrade, waitSynced } from './helpers.mjs'

const SKIP = IS_REFERENCE && 'the reference server has no identity'

let server
let admin
let project
let ownerKey

const b64url = (data) => Buffer.from(data).toString('base64url')

/** An HS256 token signed with `secret`, with the given claims merged over sane defaults. */
function hs256 (claims, secret = TEST_SECRETS.TOKEN_SECRET, header = { alg: 'HS256', typ: 'JWT' }) {
  const now = Math.floor(Date.now() / 1000)
  const body = { iat: now, nbf: now, exp: now + 600, sub: 'crafted', prj: 'prj_dev', room: '*', role: 'editor', ...claims }
  const signing = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(body))}`
  const sig = crypto.createHmac('sha256', secret).update(signing).digest('base64url')
  return `${signing}.${sig}`
}

/** A token signed with an asymmetric private key (EdDSA or ES256). */
function signed (alg, kid, privateKey, claims) {
  const now = Math.floor(Date.now() / 1000)
  const body = { iat: now, exp: now + 600, sub: 'team-user', role: 'editor', ...claims }
  const signing = `${b64url(JSON.stringify({ alg, typ: 'JWT', kid }))}.${b64url(JSON.stringify(body))}`
  const sig = alg === 'EdDSA'
    ? crypto.sign(null, Buffer.from(signing), privateKey)
    : crypto.sign('sha256', Buffer.from(signing), { key: privateKey, dsaEncoding: 'ieee-p1363' })
  return `${signing}.${sig.toString('base64url')}`
}

async function api (method, path, { key, body, raw } = {}) {
  const headers = {}
  if (key) headers.authorization = `Bearer ${key}`
  if (body !== undefined || raw !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers,
    body: raw !== undefined ? raw : body !== undefined ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10_000)
  })
  const text = await res.text()
  let json
  try { json = JSON.parse(text) } catch { json = text }
  return { status: res.status, json, type: res.headers.get('content-type') }
}

/** Asserts an RFC 9457 problem with the given status and error word. */
function problem (res, status, error, what) {
  assert.equal(res.status, status, `${what}: status (body ${JSON.stringify(res.json)})`)
  assert.match(res.type || '', /application\/problem\+json/, `${what}: content type`)
  assert.equal(res.json.error, error, `${what}: error (body ${JSON.stringify(res.json)})`)
  assert.equal(res.json.type, `tag:tandemx,2026:${error}`, `${what}: type`)
}

/** Attempts a room upgrade with `token` (or none) and returns the HTTP outcome. */
function upgrade (room, token) {
  const q = token === undefined ? '?token=' : `?token=${encodeURIComponent(token)}`
  return tryUpgrade(`${server.url}/rooms/${room}${token === null ? '' : q}`, 10_000, { addToken: false })
}

async function mint (key, body) {
  const res = await api('POST', `/v1/projects/${project}/tokens`, { key, body })
  assert.equal(res.status, 201, JSON.stringify(res.json))
  return res.json.token
}

before(async () => {
  if (SKIP) return
  server = await startServer()
  admin = server.adminSecret
  const res = await api('POST', '/v1/projects', { key: admin, body: { name: 'Identity tests' } })
  assert.equal(res.status, 201, JSON.stringify(res.json))
  project = res.json.project.id
  ownerKey = res.json.key.secret
  assert.match(ownerKey, /^tx_key_[0-9a-f]{16}_[0-9a-f]{64}$/)
}, { timeout: 150_000 })

after(async () => {
  destroyAll()
  if (server) await server.stop()
})

describe('the HTTP API', { skip: SKIP }, () => {
  test('needs a credential, and only the admin secret creates projects', async () => {
    problem(await api('POST', '/v1/projects', { body: { name: 'x' } }), 401, 'missing-credential', 'no credential')
    problem(await api('POST', '/v1/projects', { key: 'nonsense', body: { name: 'x' } }), 401, 'malformed-credential', 'garbage')
    problem(await api('POST', '/v1/projects', { key: ownerKey, body: { name: 'x' } }), 403, 'forbidden', 'a key')
    const wrongSecret = ownerKey.slice(0, -4) + (ownerKey.endsWith('0000') ? '1111' : '0000')
    problem(await api('GET', `/v1/projects/${project}`, { key: wrongSecret }), 401, 'bad-signature', 'wrong key secret')
  })

  test('malformed bodies are refused with 400 and nothing is created', async () => {
    const before = (await api('GET', `/v1/projects/${project}/keys`, { key: ownerKey })).json.keys.length
    for (const raw of ['{', '[]', '{"name": 5, "role": "editor"}', '{"name":"k","role":"admin"}', '{"name":"k","role":"editor","extra":1}']) {
      problem(await api('POST', `/v1/projects/${project}/keys`, { key: ownerKey, raw }), 400, 'invalid-body', raw)
    }
    problem(await api('POST', `/v1/projects/${project}/tokens`, { key: ownerKey, raw: '{"sub":"a"}' }), 400, 'invalid-body', 'token without room')
    problem(await api('POST', `/v1/projects/${project}/tokens`, { key: ownerKey, body: { sub: 'a', room: 'bad room' } }), 400, 'invalid-body', 'bad room')
    problem(await api('POST', `/v1/projects/${project}/tokens`, { key: ownerKey, body: { sub: 'a', room: 'r', ttl_seconds: 999999 } }), 400, 'invalid-body', 'ttl too long')
    const after = (await api('GET', `/v1/projects/${project}/keys`, { key: ownerKey })).json.keys.length
    assert.equal(after, before)
  })

  test('keys: created with a ceiling, shown once, listed without secrets, revocable', async () => {
    const created = await api('POST', `/v1/projects/${project}/keys`, { key: ownerKey, body: { name: 'ci bot', role: 'editor' } })
    assert.equal(created.status, 201)
    const editorKey = created.json.secret
    const listed = await api('GET', `/v1/projects/${project}/keys`, { key: ownerKey })
    const row = listed.json.keys.find((k) => k.id === created.json.id)
    assert.equal(row.role, 'editor')
    assert.ok(!JSON.stringify(listed.json).includes(editorKey.slice(-64)), 'no secret in listings')
    // An editor key cannot manage keys, nor mint above its ceiling.
    problem(await api('POST', `/v1/projects/${project}/keys`, { key: editorKey, body: { name: 'x', role: 'owner' } }), 403, 'forbidden', 'editor key makes keys')
    problem(await api('POST', `/v1/projects/${project}/tokens`, { key: editorKey, body: { sub: 'u', room: 'r', role: 'owner' } }), 403, 'role-above-ceiling', 'owner token from editor key')
    const ok = await api('POST', `/v1/projects/${project}/tokens`, { key: editorKey, body: { sub: 'u', room: 'r', role: 'viewer' } })
    assert.equal(ok.status, 201)
    assert.equal(ok.json.role, 'viewer')
    // Revoke: the key stops working at once.
    assert.equal((await api('DELETE', `/v1/projects/${project}/keys/${created.json.id}`, { key: ownerKey })).status, 200)
    problem(await api('GET', `/v1/projects/${project}`, { key: editorKey }), 403, 'revoked', 'revoked key')
    problem(await api('DELETE', `/v1/projects/${project}/keys/${created.json.id}`, { key: ownerKey }), 409, 'conflict', 'revoke twice')
  })

  test('members: roles cap the tokens minted for them', async () => {
    assert.equal((await api('PUT', `/v1/projects/${project}/members/bea%40example.com`, { key: ownerKey, body: { role: 'viewer' } })).status, 201)
    const members = await api('GET', `/v1/projects/${project}/members`, { key: ownerKey })
    assert.deepEqual(members.json.members.map((m) => [m.sub, m.role]), [['bea@example.com', 'viewer']])
    const dflt = await api('POST', `/v1/projects/${project}/tokens`, { key: ownerKey, body: { sub: 'bea@example.com', room: 'r' } })
    assert.equal(dflt.json.role, 'viewer')
    problem(await api('POST', `/v1/projects/${project}/tokens`, { key: ownerKey, body: { sub: 'bea@example.com', room: 'r', role: 'editor' } }), 403, 'role-above-ceiling', 'above membership')
    assert.equal((await api('PUT', `/v1/projects/${project}/members/bea%40example.com`, { key: ownerKey, body: { role: 'editor' } })).status, 200)
    const upgraded = await api('POST', `/v1/projects/${project}/tokens`, { key: ownerKey, body: { sub: 'bea@example.com', room: 'r' } })
    assert.equal(upgraded.json.role, 'editor')
    assert.equal((await api('DELETE', `/v1/projects/${project}/members/bea%40example.com`, { key: ownerKey })).status, 200)
    problem(await api('DELETE', `/v1/projects/${project}/members/bea%40example.com`, { key: ownerKey }), 404, 'not-found', 'remove twice')
  })

  test('a key of another project sees nothing of this one', async () => {
    const other = await api('POST', '/v1/projects', { key: admin, body: { name: 'Other' } })
    problem(await api('GET', `/v1/projects/${project}`, { key: other.json.key.secret }), 404, 'not-found', 'foreign key')
    problem(await api('POST', `/v1/projects/${project}/tokens`, { key: other.json.key.secret, body: { sub: 'x', room: 'r' } }), 404, 'not-found', 'foreign mint')
  })

  test('documents: create, list, delete; the audit log records who did what', async () => {
    const name = roomName('doc')
    assert.equal((await api('POST', `/v1/projects/${project}/documents`, { key: ownerKey, body: { name } })).status, 201)
    problem(await api('POST', `/v1/projects/${project}/documents`, { key: ownerKey, body: { name } }), 409, 'conflict', 'duplicate')
    const docs = await api('GET', `/v1/projects/${project}/documents`, { key: ownerKey })
    assert.ok(docs.json.documents.some((d) => d.name === name))
    assert.equal((await api('DELETE', `/v1/projects/${project}/documents/${name}`, { key: ownerKey })).status, 200)
    // A deleted document refuses connections until it is created again.
    const token = await mint(ownerKey, { sub: 'ada', room: name })
    const res = await upgrade(name, token)
    assert.equal(res.status, 410, res.body)
    const audit = await api('GET', `/v1/projects/${project}/audit`, { key: ownerKey })
    const actions = audit.json.events.map((e) => e.action)
    for (const a of ['project.created', 'key.created', 'key.revoked', 'member.added', 'member.role_changed', 'member.removed', 'document.created', 'document.deleted', 'token.issued']) {
      assert.ok(actions.includes(a), `audit has ${a}: ${actions.join(', ')}`)
    }
    assert.ok(audit.json.events.every((e) => e.actor && e.at > 0))
  })
})

describe('room tokens, refused before the room', { skip: SKIP }, () => {
  test('the negative matrix: each bad token gets 401/403 with its reason', async () => {
    const room = roomName('neg')
    const now = Math.floor(Date.now() / 1000)
    const cases = [
      ['no token', null, 401, 'missing-credential'],
      ['empty token', '', 401, 'missing-credential'],
      ['garbage', 'not.a.jwt', 401, 'malformed-credential'],
      ['alg none', `${b64url('{"alg":"none","typ":"JWT"}')}.${b64url(JSON.stringify({ sub: 'x', prj: 'prj_dev', room: '*', role: 'owner', exp: now + 60 }))}.`, 401, 'malformed-credential'],
      ['forged signature', hs256({}, 'some-other-secret-that-is-long-enough'), 401, 'bad-signature'],
      ['HS384 header', hs256({}, TEST_SECRETS.TOKEN_SECRET, { alg: 'HS384', typ: 'JWT' }), 401, 'malformed-credential'],
      ['expired', hs256({ iat: now - 7200, nbf: now - 7200, exp: now - 3600 }), 401, 'token-expired'],
      ['not yet valid', hs256({ iat: now, nbf: now + 3600, exp: now + 7200 }), 401, 'token-not-yet-valid'],
      ['another room', hs256({ room: 'some-other-room' }), 403, 'wrong-room'],
      ['another room prefix', hs256({ room: 'team-b:*' }), 403, 'wrong-room'],
      ['unknown project', hs256({ prj: 'prj_0000000000000000' }), 403, 'project-deleted'],
      ['unknown minting key', hs256({ key: 'key_00000000000000ff' }), 403, 'revoked']
    ]
    for (const [what, token, status, error] of cases) {
      const res = await upgrade(room, token)
      assert.equal(res.upgraded, false, `${what}: must not upgrade`)
      assert.equal(res.status, status, `${what}: ${res.body}`)
      assert.equal(JSON.parse(res.body).error, error, `${what}: ${res.body}`)
    }
  })

  test('a revoked key and a deleted project revoke their tokens', async () => {
    const made = await api('POST', '/v1/projects', { key: admin, body: { name: 'Short-lived' } })
    const p = made.json.project.id
    const key = (await api('POST', `/v1/projects/${p}/keys`, { key: made.json.key.secret, body: { name: 'k', role: 'editor' } })).json
    const room = roomName('rev')
    const token = (await api('POST', `/v1/projects/${p}/tokens`, { key: key.secret, body: { sub: 'u', room } })).json.token
    assert.equal((await upgrade(room, token)).upgraded, true, 'valid before revocation')
    await api('DELETE', `/v1/projects/${p}/keys/${key.id}`, { key: made.json.key.secret })
    const revoked = await upgrade(room, token)
    assert.equal(revoked.status, 403)
    assert.equal(JSON.parse(revoked.body).error, 'revoked')
    const ownerToken = (await api('POST', `/v1/projects/${p}/tokens`, { key: made.json.key.secret, body: { sub: 'u', room } })).json.token
    assert.equal((await api('DELETE', `/v1/projects/${p}`, { key: made.json.key.secret })).status, 200)
    const gone = await upgrade(room, ownerToken)
    assert.equal(gone.status, 403)
    assert.equal(JSON.parse(gone.body).error, 'project-deleted')
    problem(await api('GET', `/v1/projects/${p}`, { key: admin }), 404, 'not-found', 'deleted project')
  })

  test('a token in Sec-WebSocket-Protocol works and the protocol is echoed', async () => {
    const room = roomName('proto')
    const token = await mint(ownerKey, { sub: 'proto-user', room })
    const { WebSocket } = await import('./helpers.mjs')
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/rooms/${room}`, ['tandemx', token])
    const opened = await new Promise((resolve, reject) => {
      ws.once('open', () => resolve(ws.protocol))
      ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)))
      ws.once('error', reject)
    })
    assert.equal(opened, 'tandemx')
    ws.terminate()
  })
})

describe('roles in the room', { skip: SKIP }, () => {
  test('owner and editor write; viewer and commenter read, and their writes reach nobody', async () => {
    const room = roomName('roles')
    const tokens = {}
    for (const role of ['owner', 'editor', 'commenter', 'viewer']) {
      tokens[role] = await mint(ownerKey, { sub: `${role}-user`, room, role })
    }
    const clients = {}
    for (const role of Object.keys(tokens)) {
      clients[role] = connectProvider(server.wsUrl, room, { params: { token: tokens[role] } })
      await waitSynced(clients[role])
    }
    const text = (role) => clients[role].doc.getText('t').toString()
    clients.owner.doc.getText('t').insert(0, 'owner ')
    clients.editor.doc.getText('t').insert(0, 'editor ')
    await waitFor(() => Object.keys(clients).every((r) => text(r).length === 'owner editor '.length), { description: 'writers reach everyone' })
    const agreed = text('owner')
    // Read-only roles edit locally; the server applies nothing.
    clients.viewer.doc.getText('t').insert(0, 'VIEWER ')
    clients.commenter.doc.getText('t').insert(0, 'COMMENTER ')
    await sleep(1000)
    assert.equal(text('owner'), agreed)
    assert.equal(text('editor'), agreed)
    // A fresh client sees exactly what the writers wrote.
    const fresh = connectProvider(server.wsUrl, room, { params: { token: tokens.viewer } })
    await waitSynced(fresh)
    assert.equal(fresh.doc.getText('t').toString(), agreed)
    // Presence still flows from read-only roles.
    clients.viewer.awareness.setLocalStateField('user', { name: 'Vi' })
    await waitFor(() => [...clients.owner.awareness.getStates().values()].some((s) => s.user?.name === 'Vi'), { description: 'viewer presence' })
    for (const p of [...Object.values(clients), fresh]) destroyProvider(p)
  })

  test('a viewer gets the y-protocols permission-denied message for a write', async () => {
    const room = roomName('deny')
    // A viewer cannot open a document that does not exist (it would create it): make it first.
    assert.equal((await api('POST', `/v1/projects/${project}/documents`, { key: ownerKey, body: { name: room } })).status, 201)
    const token = await mint(ownerKey, { sub: 'v', room, role: 'viewer' })
    const sock = openRaw(`${server.wsUrl}/${room}?token=${token}`)
    await sock.e2e.opened
    const doc = new Y.Doc()
    doc.getText('t').insert(0, 'nope')
    const update = Y.encodeStateAsUpdate(doc)
    const frame = Buffer.concat([Buffer.from([0, 2]), varUint(update.length), Buffer.from(update)])
    sock.send(frame)
    await waitFor(() => sock.e2e.messages.some((m) => m instanceof Uint8Array && m[0] === 2 && m[1] === 0), { description: 'auth message' })
    sock.terminate()
  })

  test('a connection is closed with 4401 when its token expires', async () => {
    const room = roomName('exp')
    const now = Math.floor(Date.now() / 1000)
    const token = hs256({ room, exp: now + 3, iat: now, nbf: now })
    const sock = openRaw(`${server.wsUrl}/${room}?token=${token}`)
    await sock.e2e.opened
    const closed = await Promise.race([sock.e2e.closed, sleep(20_000).then(() => null)])
    assert.ok(closed, 'closed within 20 s of expiry')
    assert.equal(closed.code, 4401)
    assert.equal(closed.reason, 'token expired')
    const again = await upgrade(room, token)
    assert.equal(again.status, 401, 'an expired token cannot reconnect')
  })
})

describe('project-signed tokens', { skip: SKIP }, () => {
  for (const [alg, type, opts] of [['EdDSA', 'ed25519', {}], ['ES256', 'ec', { namedCurve: 'P-256' }]]) {
    test(`${alg}: a registered public key admits tokens the team signs itself`, async () => {
      const { publicKey, privateKey } = crypto.generateKeyPairSync(type, opts)
      const pem = publicKey.export({ type: 'spki', format: 'pem' })
      const kid = `team-${alg.toLowerCase()}-${crypto.randomBytes(3).toString('hex')}`
      const reg = await api('POST', `/v1/projects/${project}/signing-keys`, { key: ownerKey, body: { kid, alg, public_key: pem } })
      assert.equal(reg.status, 201, JSON.stringify(reg.json))
      const room = roomName('byo')
      const good = signed(alg, kid, privateKey, { prj: project, room })
      assert.equal((await upgrade(room, good)).upgraded, true)
      // Claiming another project with this key: refused.
      const other = signed(alg, kid, privateKey, { prj: 'prj_dev', room })
      const wrong = await upgrade(room, other)
      assert.equal(JSON.parse(wrong.body).error, 'wrong-project')
      // A different private key under the same kid: bad signature.
      const { privateKey: stranger } = crypto.generateKeyPairSync(type, opts)
      assert.equal(JSON.parse((await upgrade(room, signed(alg, kid, stranger, { prj: project, room }))).body).error, 'bad-signature')
      // Unknown kid.
      assert.equal(JSON.parse((await upgrade(room, signed(alg, 'nobody', privateKey, { prj: project, room }))).body).error, 'unknown-signing-key')
      // Revoked.
      assert.equal((await api('DELETE', `/v1/projects/${project}/signing-keys/${kid}`, { key: ownerKey })).status, 200)
      assert.equal(JSON.parse((await upgrade(room, good)).body).error, 'revoked')
    })
  }

  test('a malformed public key is refused', async () => {
    problem(await api('POST', `/v1/projects/${project}/signing-keys`, { key: ownerKey, body: { alg: 'EdDSA', public_key: 'not a key' } }), 400, 'invalid-body', 'bad pem')
    problem(await api('POST', `/v1/projects/${project}/signing-keys`, { key: ownerKey, body: { alg: 'RS256', public_key: 'x' } }), 400, 'invalid-body', 'bad alg')
  })
})

describe('rate limits', { skip: SKIP }, () => {
  test('a flooding connection is closed with 4429; a calm one in the same room is not', async () => {
    const limited = await startServer({ vars: { RATE_MESSAGES_PER_SECOND: '5' } })
    try {
      const room = roomName('flood')
      const token = await devToken(limited.url, { room, role: 'editor', sub: 'flooder' })
      const calmToken = await devToken(limited.url, { room, role: 'editor', sub: 'calm' })
      const calm = connectProvider(limited.wsUrl, room, { params: { token: calmToken } })
      await waitSynced(calm)
      const sock = openRaw(`${limited.wsUrl}/${room}?token=${token}`)
      await sock.e2e.opened
      for (let i = 0; i < 200; i++) sock.send(Buffer.from([3]))
      const closed = await Promise.race([sock.e2e.closed, sleep(10_000).then(() => null)])
      assert.ok(closed, 'flooder closed')
      assert.equal(closed.code, 4429)
      assert.equal(calm.wsconnected, true)
      calm.doc.getText('t').insert(0, 'still here')
      const check = connectProvider(limited.wsUrl, room, { params: { token: calmToken } })
      await waitFor(() => check.doc.getText('t').toString() === 'still here', { description: 'calm writes land' })
      destroyProvider(calm)
      destroyProvider(check)
    } finally {
      await limited.stop()
    }
  })
})

function varUint (n) {
  const out = []
  while (n > 0x7f) { out.push(0x80 | (n & 0x7f)); n >>>= 7 }
  out.push(n)
  return Buffer.from(out)
}
