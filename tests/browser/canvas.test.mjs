// The demo canvas in real browsers: Debian's Chromium driven by playwright-core, against the
// worker under `wrangler dev` serving client/dist. Two browser contexts are two users.

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import fs from 'node:fs'
import { startDemoServer } from './server.mjs'
import { browserMissing, launch } from './browser.mjs'

const ARTIFACTS = new URL('./artifacts/', import.meta.url)
const missing = browserMissing()
const ADA = { name: 'Ada', color: '#e4572e' }
const GRACE = { name: 'Grace', color: '#2e6fd8' }

let server
let browser
const contexts = []

before(async () => {
  if (missing !== null) return
  server = await startDemoServer()
  browser = await launch()
})

after(async () => {
  for (const c of contexts) await c.close().catch(() => {})
  await browser?.close()
  await server?.stop()
})

const roomName = (prefix) => `${prefix}-${crypto.randomBytes(4).toString('hex')}`

/** Opens `room` in a new browser context as `who`; resolves once the board is synced. */
async function openBoard (room, who, role = 'editor') {
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } })
  contexts.push(context)
  const page = await context.newPage()
  page.errors = []
  page.on('pageerror', (err) => page.errors.push(err.message))
  const q = new URLSearchParams({ room, name: who.name, color: who.color, role })
  await page.goto(`${server.url}/?${q}`)
  await synced(page)
  return { context, page }
}

const synced = (page) => page.waitForSelector('#status[data-status="synced"]', { timeout: 30_000 })
const nodes = (page) => page.evaluate(() => window.tandemx.nodes())
const edges = (page) => page.evaluate(() => window.tandemx.edges().map((e) => `${e.from}->${e.to}`).sort())
const centerOf = async (locator) => {
  const b = await locator.boundingBox()
  return { x: b.x + b.width / 2, y: b.y + b.height / 2 }
}
const nodeEl = (page, id) => page.locator(`.node[data-id="${id}"]`)

/** Waits until both pages hold the same canvas; returns it. */
async function converged (a, b, what) {
  let last
  for (let i = 0; i < 200; i++) {
    const [na, nb, ea, eb] = await Promise.all([nodes(a), nodes(b), edges(a), edges(b)])
    last = { na, nb, ea, eb }
    if (JSON.stringify(na) === JSON.stringify(nb) && JSON.stringify(ea) === JSON.stringify(eb)) return { nodes: na, edges: ea }
    await a.waitForTimeout(50)
  }
  assert.fail(`${what}: the two browsers did not converge: ${JSON.stringify(last)}`)
}

/** Saves both pages side by side as one PNG. */
async function screenshotPair (left, right, file) {
  const [l, r] = await Promise.all([left.screenshot(), right.screenshot()])
  const context = await browser.newContext({ viewport: { width: 2236, height: 760 } })
  const page = await context.newPage()
  const img = (buf, title) => `<figure><figcaption>${title}</figcaption><img src="data:image/png;base64,${buf.toString('base64')}"></figure>`
  await page.setContent(`<style>body{margin:0;display:flex;gap:12px;padding:12px;background:#3b4252;font:14px system-ui}
    figure{margin:0}figcaption{color:#fff;margin:0 0 6px}img{display:block;border-radius:6px}</style>
    ${img(l, 'Window 1 — Ada')}${img(r, 'Window 2 — Grace')}`)
  fs.mkdirSync(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: new URL(file, ARTIFACTS).pathname, fullPage: true })
  await context.close()
}

test('two browsers build a diagram together: nodes, edges, renames, cursors, selections, undo', { skip: missing ?? false }, async () => {
  const room = roomName('canvas')
  const { page: a } = await openBoard(room, ADA)
  const { page: b } = await openBoard(room, GRACE)

  // Ada adds three nodes with the toolbar.
  await a.click('[data-add="service"]')
  await a.click('[data-add="database"]')
  await a.click('[data-add="cache"]')
  await a.waitForFunction(() => window.tandemx.nodes().length === 3)
  const byKind = Object.fromEntries((await nodes(a)).map((n) => [n.kind, n.id]))

  // Service -> database by dragging from the service's handle onto the database.
  const port = await centerOf(nodeEl(a, byKind.service).locator('.port'))
  const target = await centerOf(nodeEl(a, byKind.database))
  await a.mouse.move(port.x, port.y)
  await a.mouse.down()
  await a.mouse.move(target.x, target.y, { steps: 8 })
  await a.mouse.up()
  // Database -> cache by selecting both and pressing Connect.
  await nodeEl(a, byKind.database).click()
  await nodeEl(a, byKind.cache).click({ modifiers: ['Shift'] })
  await a.click('#link')
  await a.waitForFunction(() => window.tandemx.edges().length === 2)

  // Rename the service by double-clicking it.
  await nodeEl(a, byKind.service).dblclick()
  await a.fill('input.rename', 'API gateway')
  await a.keyboard.press('Enter')

  // Drag the cache 140 px down.
  const cache = await centerOf(nodeEl(a, byKind.cache))
  await a.mouse.move(cache.x - 30, cache.y)
  await a.mouse.down()
  await a.mouse.move(cache.x - 30, cache.y + 140, { steps: 10 })
  await a.mouse.up()

  // Grace sees all of it, in her own canvas.
  const state = await converged(a, b, 'after Ada built the diagram')
  assert.equal(state.nodes.length, 3)
  assert.deepEqual(state.edges, [`${byKind.service}->${byKind.database}`, `${byKind.database}->${byKind.cache}`].sort())
  assert.equal(state.nodes.find((n) => n.id === byKind.service).label, 'API gateway')
  await b.waitForFunction(() => document.querySelectorAll('.canvas .node').length === 3 && document.querySelectorAll('.canvas .edge').length === 2)
  assert.match(await b.locator(`.node[data-id="${byKind.service}"] .label`).textContent(), /API gateway/)

  // Ada's cursor and selection show up in Grace's window, in Ada's colour.
  await a.click('#zoom-fit')
  await b.click('#zoom-fit')
  await nodeEl(a, byKind.database).click()
  const free = await a.locator('#stage').boundingBox()
  await a.mouse.move(free.x + 160, free.y + 120, { steps: 4 })
  await b.waitForSelector('.cursors .cursor text:text("Ada")', { timeout: 10_000 })
  await b.waitForSelector(`.halo[stroke="${ADA.color}"]`, { timeout: 10_000 })
  await b.waitForSelector('#people li:has-text("Ada")')
  await a.waitForSelector('#people li:has-text("Grace")')
  // And Grace's cursor in Ada's.
  const bStage = await b.locator('#stage').boundingBox()
  await b.mouse.move(bStage.x + 420, bStage.y + 300, { steps: 4 })
  await a.waitForSelector('.cursors .cursor text:text("Grace")', { timeout: 10_000 })

  await screenshotPair(a, b, 'collaboration.png')

  // Undo is per user: Grace adds a queue, Ada undoes her last change (the drag); the queue stays.
  const before = (await nodes(a)).find((n) => n.id === byKind.cache)
  await b.click('[data-add="queue"]')
  await a.waitForFunction(() => window.tandemx.nodes().length === 4)
  await a.click('#undo')
  await a.waitForFunction(([id, y]) => window.tandemx.nodes().find((n) => n.id === id).y < y, [byKind.cache, before.y])
  const afterUndo = await converged(a, b, 'after Ada undid')
  assert.equal(afterUndo.nodes.length, 4, "Ada's undo must not remove Grace's queue")
  assert.ok(afterUndo.nodes.some((n) => n.kind === 'queue'))
  assert.equal(afterUndo.nodes.find((n) => n.id === byKind.cache).y, before.y - 140)

  // Delete from the keyboard, seen by both: the database goes, and both of its edges with it.
  await nodeEl(a, byKind.database).click()
  await a.keyboard.press('Delete')
  const afterDelete = await converged(a, b, 'after delete')
  assert.deepEqual(afterDelete.nodes.map((n) => n.kind).sort(), ['cache', 'queue', 'service'])
  assert.deepEqual(afterDelete.edges, [])

  assert.deepEqual([...a.errors, ...b.errors], [])
})

test('one browser edits offline; both converge when it reconnects', { skip: missing ?? false }, async () => {
  const room = roomName('offline')
  const { page: a } = await openBoard(room, ADA)
  const { context: bContext, page: b } = await openBoard(room, GRACE)
  const [s, d] = await a.evaluate(() => [
    window.tandemx.addNode('service', 0, 0, 'Orders'),
    window.tandemx.addNode('database', 300, 0, 'Orders DB')
  ])
  await converged(a, b, 'initial')

  await bContext.setOffline(true)
  await b.waitForSelector('#status[data-status="disconnected"]', { timeout: 10_000 })

  // Grace, offline: adds a queue with the toolbar, connects it, renames the service.
  await b.click('[data-add="queue"]')
  const queue = (await nodes(b)).find((n) => n.kind === 'queue').id
  await b.evaluate(([from, to]) => window.tandemx.link(from, to), [s, queue])
  await nodeEl(b, s).dblclick()
  await b.fill('input.rename', 'Orders API')
  await b.keyboard.press('Enter')
  assert.match(await b.textContent('#status'), /Offline · \d+ local edits? to merge/)
  fs.mkdirSync(ARTIFACTS, { recursive: true })
  await b.screenshot({ path: new URL('offline.png', ARTIFACTS).pathname })

  // Ada, online meanwhile: moves the database and adds a cache.
  await a.evaluate((id) => window.tandemx.board.moveNodes([{ id, x: 320, y: 160 }]), d)
  await a.evaluate(() => window.tandemx.addNode('cache', 0, 200, 'Sessions'))
  await a.waitForTimeout(300)
  assert.equal((await nodes(a)).length, 3, "Ada must not see Grace's offline work yet")

  await bContext.setOffline(false)
  await synced(b)
  await b.waitForSelector('.toast:has-text("offline edit")', { timeout: 15_000 })
  const final = await converged(a, b, 'after reconnect')
  assert.deepEqual(final.nodes.map((n) => n.label).sort(), ['Orders API', 'Orders DB', 'Queue', 'Sessions'])
  assert.deepEqual(final.nodes.find((n) => n.id === d), { id: d, kind: 'database', label: 'Orders DB', x: 320, y: 160, w: 168, h: 64 })
  assert.deepEqual(final.edges, [`${s}->${queue}`])
  assert.equal(await b.getAttribute('#status', 'data-tone'), 'ok')
  assert.deepEqual([...a.errors, ...b.errors], [])
})

test('a viewer token cannot change the canvas', { skip: missing ?? false }, async (t) => {
  const room = roomName('viewer')
  const probe = await fetch(`${server.url}/v1/dev/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ room, role: 'viewer', name: 'probe', color: '#000000' })
  })
  await probe.arrayBuffer()
  if (probe.status === 404) {
    t.skip('POST /v1/dev/token answered 404: this server has no development sign-in, so there are no viewer tokens to test')
    return
  }
  assert.equal(probe.status, 201)

  const { page: editor } = await openBoard(room, ADA)
  await editor.evaluate(() => window.tandemx.addNode('service', 0, 0, 'Billing'))
  const { page: viewer } = await openBoard(room, GRACE, 'viewer')
  await converged(editor, viewer, 'viewer loaded')
  assert.equal(await viewer.textContent('#auth'), 'dev token · viewer')
  assert.equal(await viewer.isVisible('#readonly-badge'), true)
  assert.equal(await viewer.isDisabled('[data-add="service"]'), true)

  // The UI does not let a viewer edit...
  const stage = await viewer.locator('#stage').boundingBox()
  await viewer.mouse.dblclick(stage.x + 60, stage.y + 60)
  assert.equal((await nodes(viewer)).length, 1)
  // ...and when the document is changed anyway, the server drops it and says so.
  await viewer.evaluate(() => window.tandemx.forceAddNode('database', 200, 200, 'Sneaky'))
  await viewer.waitForSelector('.toast:has-text("The server refused your change")', { timeout: 10_000 })
  // The demo takes the refused change back, so the viewer's canvas matches the room again.
  await viewer.waitForFunction(() => window.tandemx.nodes().length === 1)
  fs.mkdirSync(ARTIFACTS, { recursive: true })
  await viewer.screenshot({ path: new URL('viewer.png', ARTIFACTS).pathname })
  await editor.waitForTimeout(500)
  assert.deepEqual((await nodes(editor)).map((n) => n.label), ['Billing'])

  // A fresh load of the viewer's page shows what the server has: no sneaky node.
  await viewer.reload()
  await synced(viewer)
  assert.deepEqual((await nodes(viewer)).map((n) => n.label), ['Billing'])
  // The viewer still sees the editor's changes live.
  await editor.evaluate(() => window.tandemx.addNode('queue', 300, 0, 'Invoices'))
  await viewer.waitForFunction(() => window.tandemx.nodes().length === 2)
  assert.deepEqual(editor.errors, [])
  assert.deepEqual(viewer.errors, [])
})

test('the landing page creates a room, and its link lets someone else join', { skip: missing ?? false }, async () => {
  const first = await browser.newContext({ viewport: { width: 1100, height: 700 } })
  contexts.push(first)
  const a = await first.newPage()
  await a.goto(`${server.url}/`)
  await a.fill('#name', 'Ada')
  await a.selectOption('#role', 'editor')
  await a.click('#create')
  await synced(a)
  const room = new URL(a.url()).searchParams.get('room')
  assert.match(room, /^board-[a-z0-9]+$/)
  assert.match(await a.textContent('#room-name'), new RegExp(room))

  const second = await browser.newContext({ viewport: { width: 1100, height: 700 } })
  contexts.push(second)
  const b = await second.newPage()
  await b.goto(`${server.url}/?room=${room}`)
  assert.match(await b.textContent('#landing-title'), new RegExp(room))
  await b.fill('#name', 'Grace')
  await b.click('#join')
  await synced(b)
  await a.evaluate(() => window.tandemx.addNode('service', 0, 0, 'Hello'))
  await b.waitForFunction(() => window.tandemx.nodes().some((n) => n.label === 'Hello'))
  // Joining by pasting a full link works too.
  await b.goto(`${server.url}/`)
  await b.fill('#join-input', `${server.url}/?room=${room}`)
  await b.click('#join')
  await synced(b)
  assert.equal(new URL(b.url()).searchParams.get('room'), room)
})
