// Assets in the demo, in real browsers: an image dropped on Ada's canvas is uploaded (a progress
// card where it was dropped), becomes an image node whose src is `tandemx://asset/<id>@1`, and
// Grace's canvas shows the picture through a signed link; the asset panel lists it; a drop
// while the browser is offline waits for the network, then goes on.

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
const ASSET_URI = /^tandemx:\/\/asset\/ast_[0-9a-f]{20}@1$/

let server
let browser
const contexts = []

before(async () => {
  if (missing !== null) return
  // Rooms record the asset URIs of their document a second after a change.
  server = await startDemoServer({ vars: { ASSET_USAGE_SECONDS: '1' } })
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
  const context = await browser.newContext({ viewport: { width: 1280, height: 760 } })
  contexts.push(context)
  const page = await context.newPage()
  page.errors = []
  page.on('pageerror', (err) => page.errors.push(err.message))
  const q = new URLSearchParams({ room, name: who.name, color: who.color, role })
  await page.goto(`${server.url}/?${q}`)
  await page.waitForSelector('#status[data-status="synced"]', { timeout: 30_000 })
  return { context, page }
}

const images = (page) => page.evaluate(() => window.tandemx.nodes().filter((n) => n.kind === 'image'))

/**
 * Remembers every upload card that appears in `#uploads` and the progress its bar showed
 * (`window.seenCards`): a card can come and go between two polls of the test.
 */
const watchCards = (page) => page.evaluate(() => {
  window.seenCards = []
  const note = (card) => {
    const bar = card.querySelector('.upload-bar')
    window.seenCards.push({ phase: card.dataset.phase, value: bar?.getAttribute('aria-valuenow') ?? null, status: card.querySelector('.upload-status')?.textContent ?? '' })
  }
  new MutationObserver((records) => {
    for (const r of records) {
      const card = (r.target instanceof Element ? r.target : r.target.parentElement)?.closest('.upload-card')
      if (card) note(card)
      for (const n of r.addedNodes) if (n instanceof Element && n.matches('.upload-card')) note(n)
    }
  }).observe(document.querySelector('#uploads'), { subtree: true, childList: true, attributes: true, characterData: true })
})

/**
 * Drops a freshly drawn PNG (`w` x `h`, in `color`) on the canvas at a fraction of its size, the
 * way a file dragged from the desktop arrives: dragenter, dragover and drop with a DataTransfer
 * holding the File.
 */
const dropImage = (page, { name, w, h, color, fx = 0.5, fy = 0.5 }) => page.evaluate(async ({ name, w, h, color, fx, fy }) => {
  const c = document.createElement('canvas')
  c.width = w
  c.height = h
  const g = c.getContext('2d')
  g.fillStyle = color
  g.fillRect(0, 0, w, h)
  g.fillStyle = '#ffffff'
  g.fillRect(w / 4, h / 4, w / 2, h / 2)
  const blob = await new Promise((resolve) => c.toBlob(resolve, 'image/png'))
  const file = new File([blob], name, { type: 'image/png' })
  const dt = new DataTransfer()
  dt.items.add(file)
  const target = document.querySelector('svg.canvas')
  const r = target.getBoundingClientRect()
  const at = { clientX: r.left + r.width * fx, clientY: r.top + r.height * fy, bubbles: true, cancelable: true, dataTransfer: dt }
  target.dispatchEvent(new DragEvent('dragenter', at))
  const over = new DragEvent('dragover', at)
  target.dispatchEvent(over)
  target.dispatchEvent(new DragEvent('drop', at))
  return { accepted: over.defaultPrevented, size: file.size }
}, { name, w, h, color, fx, fy })

/** Whether the image node `id` on `page` shows a loaded picture. */
const pictureLoaded = (page, id) => page.waitForFunction((id) => {
  const img = document.querySelector(`.node[data-id="${id}"] .picture img`)
  return img !== null && img.complete && img.naturalWidth > 0
}, id, { timeout: 20_000 })

let shared = null

test('an image dropped in one browser is uploaded and shows in the other', { skip: missing ?? false, timeout: 120_000 }, async () => {
  const room = roomName('assets')
  const { page: a } = await openBoard(room, ADA)
  const { page: b } = await openBoard(room, GRACE)
  await watchCards(a)

  const dropped = await dropImage(a, { name: 'logo.png', w: 320, h: 200, color: '#2e6fd8' })
  assert.equal(dropped.accepted, true, 'the canvas takes dragged files')

  await a.waitForFunction(() => window.tandemx.nodes().some((n) => n.kind === 'image'), null, { timeout: 30_000 })
  const [node] = await images(a)
  assert.match(node.src, ASSET_URI)
  assert.equal(node.label, 'logo.png')
  // 320 x 200 fits 240 x 180 at 0.75: 240 x 150.
  assert.deepEqual({ w: node.w, h: node.h }, { w: 240, h: 150 })

  // The progress card appeared while it uploaded, and said when it was stored.
  const seen = await a.evaluate(() => window.seenCards)
  assert.ok(seen.length > 0, 'an upload card appeared at the drop point')
  assert.ok(seen.some((c) => c.phase === 'done' && c.value === '100'), `the bar reached 100%: ${JSON.stringify(seen)}`)
  const phases = (await a.evaluate(() => window.tandemx.uploads.history()))[0].phases
  assert.deepEqual(phases.filter((p) => p !== 'offline'), ['hashing', 'uploading', 'done'])

  // Grace's canvas has the node and loads the picture through a signed link of her own.
  await b.waitForFunction(() => window.tandemx.nodes().some((n) => n.kind === 'image'), null, { timeout: 15_000 })
  const [seenByB] = await images(b)
  assert.equal(seenByB.src, node.src)
  await pictureLoaded(a, node.id)
  await pictureLoaded(b, node.id)
  const shown = await b.evaluate((id) => {
    const img = document.querySelector(`.node[data-id="${id}"] .picture img`)
    return { width: img.naturalWidth, height: img.naturalHeight, src: img.currentSrc }
  }, node.id)
  assert.deepEqual({ width: shown.width, height: shown.height }, { width: 320, height: 200 })
  assert.match(shown.src, /\/assets\/ast_[0-9a-f]{20}\/versions\/1\/content\?expires=\d+&sig=/)

  // Grace's asset panel lists it, with a thumbnail that loads (a preview where the previews
  // worker runs, else the image itself).
  const id = /ast_[0-9a-f]{20}/.exec(node.src)[0]
  await b.click('#assets-toggle')
  const card = b.locator(`.asset-card[data-asset="${id}"]`)
  await card.waitFor({ timeout: 15_000 })
  assert.equal(await card.locator('.asset-name').textContent(), 'logo.png')
  await b.waitForFunction((id) => {
    const img = document.querySelector(`.asset-card[data-asset="${id}"] .asset-thumb img`)
    return img !== null && img.complete && img.naturalWidth > 0
  }, id, { timeout: 20_000 })
  assert.match(await b.locator('#asset-storage').textContent(), /asset/)

  fs.mkdirSync(ARTIFACTS, { recursive: true })
  await b.screenshot({ path: new URL('assets-grace.png', ARTIFACTS).pathname })
  assert.deepEqual(a.errors, [])
  assert.deepEqual(b.errors, [])
  shared = { a, b, room, id }
})

test('the room records the board\'s reference to the asset', { skip: missing ?? false, timeout: 60_000 }, async (t) => {
  if (shared === null) return t.skip('the upload test did not run')
  const { b, id } = shared
  // The room records the asset URIs in its document (`asset_usage`) a second after a change.
  let recorded = null
  for (let i = 0; i < 60 && recorded === null; i++) {
    const here = await b.evaluate(() => window.tandemx.boardAssets())
    recorded = here.assets.find((x) => x.id === id) ?? null
    if (recorded === null) await b.waitForTimeout(500)
  }
  assert.ok(recorded, 'GET /documents/{d}/assets lists the dropped image')
  assert.equal(recorded.refs, 1)
})

test('the asset panel shows how many documents use an asset, and the board\'s own', { skip: missing ?? false, timeout: 60_000 }, async (t) => {
  if (shared === null) return t.skip('the upload test did not run')
  const { b, id } = shared
  await b.evaluate(() => window.tandemx.assets.refresh())
  const usage = b.locator(`.asset-card[data-asset="${id}"] .asset-usage`)
  assert.equal(await usage.getAttribute('data-used-by'), '1')
  assert.equal(await usage.textContent(), 'Used by 1 document')
  await b.click('#assets [data-scope="board"]')
  await b.waitForFunction((id) => document.querySelector(`.asset-card[data-asset="${id}"] .asset-usage`)?.textContent.startsWith('1 reference here'), id, { timeout: 15_000 })
  await b.click('#assets [data-scope="library"]')
})

test('a drop while the browser is offline waits for the network, then uploads', { skip: missing ?? false, timeout: 90_000 }, async (t) => {
  if (shared === null) return t.skip('the upload test did not run')
  const { a, b } = shared
  const context = a.context()
  await a.evaluate(() => { window.seenCards = [] })
  await context.setOffline(true)
  await a.waitForFunction(() => navigator.onLine === false)
  await dropImage(a, { name: 'offline.png', w: 120, h: 90, color: '#e8590c', fx: 0.3, fy: 0.3 })
  await a.waitForSelector('.upload-card[data-phase="offline"]', { timeout: 15_000 })
  assert.match(await a.locator('.upload-card[data-phase="offline"] .upload-status').textContent(), /waiting for the network/)
  await a.waitForTimeout(1500)
  assert.equal((await images(a)).length, 1, 'nothing placed while offline')
  await a.screenshot({ path: new URL('assets-offline-upload.png', ARTIFACTS).pathname })

  await context.setOffline(false)
  await a.waitForFunction(() => window.tandemx.nodes().filter((n) => n.kind === 'image').length === 2, null, { timeout: 30_000 })
  await b.waitForFunction(() => window.tandemx.nodes().filter((n) => n.kind === 'image').length === 2, null, { timeout: 30_000 })
  const placed = (await images(b)).find((n) => n.label === 'offline.png')
  assert.match(placed.src, ASSET_URI)
  await pictureLoaded(b, placed.id)
  const phases = (await a.evaluate(() => window.tandemx.uploads.history())).at(-1).phases
  assert.deepEqual(phases, ['hashing', 'uploading', 'offline', 'uploading', 'done'])
  assert.deepEqual(a.errors, [])
})
