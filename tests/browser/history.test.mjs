// The demo's history panel in real browsers (Debian's Chromium through playwright-core, against
// the worker under `wrangler dev` serving client/dist): versions saved, previewed, compared and
// restored; branches forked, edited, previewed and merged; the replay slider scrubbed to an
// earlier instant; and the read-only panel of a viewer. Every step goes through the panel's
// buttons; window.tandemx only builds boards quickly and reads what the canvases hold.

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

/** Opens `url` (or `room`) in a new browser context as `who`; resolves once the board is synced. */
async function openBoard (room, who, role = 'editor') {
  const context = await browser.newContext({ viewport: { width: 1500, height: 860 } })
  contexts.push(context)
  const page = await context.newPage()
  page.errors = []
  page.on('pageerror', (err) => page.errors.push(err.message))
  const q = new URLSearchParams({ room, name: who.name, color: who.color, role })
  await page.goto(`${server.url}/?${q}`)
  await synced(page)
  return page
}

const synced = (page) => page.waitForSelector('#status[data-status="synced"]', { timeout: 30_000 })
const nodes = (page) => page.evaluate(() => window.tandemx.nodes())
const labels = async (page) => (await nodes(page)).map((n) => n.label).sort()
const edgeCount = (page) => page.evaluate(() => window.tandemx.edges().length)
/** Labels the preview draws (its SVG, not the model), sorted. */
const previewLabels = async (page) => (await page.locator('#preview .node .label').allTextContents()).sort()

/** Waits until `page`'s live board has exactly these labels. */
async function boardIs (page, expected, what) {
  const want = [...expected].sort()
  let last
  for (let i = 0; i < 200; i++) {
    last = await labels(page)
    if (JSON.stringify(last) === JSON.stringify(want)) return
    await page.waitForTimeout(50)
  }
  assert.fail(`${what}: the board holds ${JSON.stringify(last)}, not ${JSON.stringify(want)}`)
}

/** Waits until the preview is shown with exactly these labels. */
async function previewIs (page, expected, what) {
  await page.waitForSelector('#preview:not([hidden])', { timeout: 10_000 })
  const want = [...expected].sort()
  let last
  for (let i = 0; i < 200; i++) {
    last = await previewLabels(page)
    if (JSON.stringify(last) === JSON.stringify(want)) {
      const model = await page.evaluate(() => window.tandemx.preview()?.nodes.map((n) => n.label).sort())
      assert.deepEqual(model, want, `${what}: the preview's model`)
      return
    }
    await page.waitForTimeout(50)
  }
  assert.fail(`${what}: the preview shows ${JSON.stringify(last)}, not ${JSON.stringify(want)}`)
}

/** Opens the history panel on `tab` and waits until no call is running. */
async function openHistory (page, tab = 'versions') {
  if (!(await page.isVisible('#history'))) await page.click('#history-toggle')
  await page.waitForSelector('#history:not([hidden])')
  await page.click(`#history [role="tab"][data-tab="${tab}"]`)
  await idle(page)
}

/** Waits until the panel has no call running. */
const idle = (page) => page.waitForSelector('#history[aria-busy="false"]', { timeout: 20_000 })

/** Fails with the panel's error, if it shows one. */
async function noPanelError (page, what) {
  if (await page.isVisible('#history-error')) assert.fail(`${what}: the panel shows ${await page.textContent('#history-error-text')}`)
}

/** The version row named `name`. */
const versionRow = (page, name) => page.locator('#version-list .hitem', { has: page.locator('.vname', { hasText: new RegExp(`^${name}$`) }) })

const shot = async (page, file) => {
  fs.mkdirSync(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: new URL(file, ARTIFACTS).pathname })
}

test('versions: save one, change the board, compare, preview it read-only, restore it; both browsers converge', { skip: missing ?? false }, async () => {
  const room = roomName('versions')
  const a = await openBoard(room, ADA)
  const b = await openBoard(room, GRACE)
  const [api] = await a.evaluate(() => {
    const api = window.tandemx.addNode('service', 0, 0, 'API')
    const db = window.tandemx.addNode('database', 300, 0, 'Orders DB')
    window.tandemx.link(api, db)
    return [api, db]
  })
  await boardIs(b, ['API', 'Orders DB'], 'Grace sees the first board')

  await openHistory(a)
  await a.fill('#version-name', 'Two nodes')
  await a.click('#version-save')
  await versionRow(a, 'Two nodes').waitFor({ timeout: 10_000 })
  await noPanelError(a, 'saving a version')
  assert.match(await a.textContent('#history-info'), /Saved version #\d+ “Two nodes”/)
  assert.match(await versionRow(a, 'Two nodes').locator('.tag').textContent(), /named/)

  // The board moves on: a cache is added, the API renamed.
  await a.evaluate(() => window.tandemx.addNode('cache', 0, 200, 'Sessions'))
  await a.evaluate((id) => window.tandemx.board.rename(id, 'Gateway'), api)
  await boardIs(b, ['Gateway', 'Orders DB', 'Sessions'], 'Grace sees the changed board')

  // Compare the version with now: the cache came, the API was renamed.
  await versionRow(a, 'Two nodes').locator('[data-act="diff"]').click()
  await a.waitForSelector('#diff:not([hidden]) .diff-lines')
  await noPanelError(a, 'the diff')
  const diff = await a.locator('#diff .diff-lines li').allTextContents()
  assert.ok(diff.some((l) => /^\+Added cache “Sessions”$/.test(l)), `diff lines: ${JSON.stringify(diff)}`)
  assert.ok(diff.some((l) => /renamed “API” → “Gateway”/.test(l)), `diff lines: ${JSON.stringify(diff)}`)
  assert.equal(diff.length, 2, `only those two changes: ${JSON.stringify(diff)}`)

  // Preview the version: its two nodes and edge, drawn read-only over the live board.
  await versionRow(a, 'Two nodes').locator('[data-act="preview"]').click()
  await previewIs(a, ['API', 'Orders DB'], 'the version preview')
  assert.equal(await a.locator('#preview .edge').count(), 1)
  assert.match(await a.textContent('#preview-title'), /Two nodes/)
  assert.match(await a.textContent('#preview-count'), /^2 nodes, 1 edge$/)
  await shot(a, 'history-version-preview.png')
  // The preview is read-only and changes nothing live: double-clicking its background adds nothing.
  const stage = await a.locator('#preview-stage').boundingBox()
  await a.mouse.dblclick(stage.x + 40, stage.y + stage.height - 40)
  assert.equal((await a.evaluate(() => window.tandemx.preview().nodes.length)), 2)
  await boardIs(a, ['Gateway', 'Orders DB', 'Sessions'], 'the live board behind the preview')
  await a.click('#preview-close')
  await a.waitForSelector('#preview', { state: 'hidden' })

  // Restore it: a new change that every board converges to.
  await versionRow(a, 'Two nodes').locator('[data-act="restore"]').click()
  await a.waitForFunction(() => /Restored version #\d+/.test(document.querySelector('#history-info').textContent))
  await idle(a) // the list reloads after the note
  await noPanelError(a, 'the restore')
  await boardIs(a, ['API', 'Orders DB'], "Ada's board after the restore")
  await boardIs(b, ['API', 'Orders DB'], "Grace's board after the restore")
  assert.equal(await edgeCount(b), 1, 'the edge is back')
  await b.waitForFunction(() => document.querySelectorAll('#stage > svg.canvas .node').length === 2)
  // The restore is recorded as a version of its own, listed first and named after the version.
  await a.locator('#version-list .hitem').first().waitFor()
  assert.equal(await a.locator('#version-list .hitem').first().getAttribute('data-kind'), 'restore')
  assert.match(await a.locator('#version-list .hitem .vname').first().textContent(), /Restored "Two nodes"/)
  // Compared again, the version matches the board.
  await versionRow(a, 'Two nodes').locator('[data-act="diff"]').click()
  await a.waitForSelector('#diff .diff-empty')
  assert.deepEqual([...a.errors, ...b.errors], [])
})

test('branches: fork now and at a version, edit the branch, preview the merge and merge it back', { skip: missing ?? false }, async () => {
  const room = roomName('branches')
  const a = await openBoard(room, ADA)
  await a.evaluate(() => {
    const web = window.tandemx.addNode('service', 0, 0, 'Web')
    const db = window.tandemx.addNode('database', 300, 0, 'DB')
    window.tandemx.link(web, db)
  })
  await openHistory(a)
  await a.fill('#version-name', 'Base')
  await a.click('#version-save')
  await versionRow(a, 'Base').waitFor({ timeout: 10_000 })

  // Fork now, from the Branches tab; the token covers `<room>*`, so the editor's fork is allowed.
  await openHistory(a, 'branches')
  assert.equal(await a.textContent('#branch-prefix'), `${room}~`)
  await a.fill('#branch-name', 'draft')
  await a.click('#branch-create')
  await a.waitForSelector('#branch-created:not([hidden]) #branch-open', { timeout: 15_000 })
  await noPanelError(a, 'forking')
  const branch = `${room}~draft`
  await a.locator(`#branch-list [data-branch="${branch}"]`).waitFor()
  const href = await a.getAttribute('#branch-open', 'href')
  assert.equal(new URL(href).searchParams.get('room'), branch)

  // Forking the same name again is refused, and the panel says so.
  await a.fill('#branch-name', 'draft')
  await a.click('#branch-create')
  await a.waitForSelector('#history-error:not([hidden])')
  assert.match(await a.textContent('#history-error-text'), /409/)
  await a.click('#history-error-dismiss')

  // Open the branch as the link offers it (another window, as a second user would).
  const bContext = await browser.newContext({ viewport: { width: 1500, height: 860 } })
  contexts.push(bContext)
  const b = await bContext.newPage()
  b.errors = []
  b.on('pageerror', (err) => b.errors.push(err.message))
  const link = new URL(href)
  link.searchParams.set('name', GRACE.name)
  link.searchParams.set('color', GRACE.color)
  await b.goto(link.toString())
  await synced(b)
  assert.equal(await b.textContent('#room-name'), branch)
  await boardIs(b, ['DB', 'Web'], 'the branch starts as the board was')

  // Both sides move on: the branch adds a cache and renames Web; the board adds a queue.
  await b.evaluate(() => {
    const web = window.tandemx.nodes().find((n) => n.label === 'Web').id
    window.tandemx.board.rename(web, 'Web app')
    window.tandemx.addNode('cache', 0, 200, 'Cache')
  })
  await a.evaluate(() => window.tandemx.addNode('queue', 300, 200, 'Jobs'))
  await boardIs(a, ['DB', 'Jobs', 'Web'], "the board does not see the branch's work yet")

  // The list says how far they diverged.
  await a.click('#history-refresh')
  await idle(a)
  const row = a.locator(`#branch-list [data-branch="${branch}"]`)
  assert.match(await row.locator('.ahead').textContent(), /^[1-9]\d* ahead$/)
  assert.match(await row.locator('.behind').textContent(), /^[1-9]\d* behind$/)

  // Preview the merge: what the board would get.
  await row.locator('[data-act="preview-merge"]').click()
  await a.waitForSelector('#merge-preview:not([hidden]) .diff-lines')
  await noPanelError(a, 'the merge preview')
  const preview = await a.locator('#merge-preview .diff-lines li').allTextContents()
  assert.ok(preview.some((l) => /Added cache “Cache”/.test(l)), `merge preview: ${JSON.stringify(preview)}`)
  assert.ok(preview.some((l) => /renamed “Web” → “Web app”/.test(l)), `merge preview: ${JSON.stringify(preview)}`)
  assert.ok(!preview.some((l) => /Jobs/.test(l)), 'the board keeps its own queue: nothing removes it')
  await boardIs(a, ['DB', 'Jobs', 'Web'], 'a preview changes nothing')
  await shot(a, 'history-merge-preview.png')

  // Merge: the board gets the union of both sides.
  await a.locator('#merge-preview [data-act="merge"]').click()
  await a.waitForFunction(() => /Merged “draft” into this board/.test(document.querySelector('#history-info').textContent))
  await idle(a)
  await noPanelError(a, 'the merge')
  await boardIs(a, ['Cache', 'DB', 'Jobs', 'Web app'], 'the board after the merge')
  await a.locator('#version-list .hitem[data-kind="merge"]').waitFor({ state: 'attached' })

  // From the branch's own panel (its token covers the parent too), there is nothing left to merge.
  await openHistory(b, 'branches')
  await b.waitForSelector('#branch-parent:not([hidden])')
  await b.click('#branch-parent [data-act="preview-merge"]')
  await b.waitForSelector('#merge-preview .diff-empty')
  await noPanelError(b, "the branch's merge preview")
  assert.match(await b.textContent('#merge-preview h3'), new RegExp(`into “${room}”`))

  // Fork at a version: the branch holds the version's board, without the later queue.
  await openHistory(a, 'versions')
  await versionRow(a, 'Base').locator('[data-act="fork"]').click()
  await a.waitForSelector('#history [data-panel="branches"]:not([hidden])')
  const baseId = await versionRow(a, 'Base').getAttribute('data-version')
  assert.equal(await a.inputValue('#branch-from'), baseId)
  await a.fill('#branch-name', 'from-base')
  await a.click('#branch-create')
  await a.waitForSelector(`#branch-list [data-branch="${room}~from-base"]`, { timeout: 15_000 })
  await noPanelError(a, 'forking at a version')
  assert.match(await a.textContent('#branch-created'), new RegExp(`from version #${baseId}`))
  await b.goto(new URL(await a.getAttribute('#branch-open', 'href')).toString().replace('name=Ada', 'name=Grace'))
  await synced(b)
  await boardIs(b, ['DB', 'Web'], 'the branch forked at "Base"')
  assert.deepEqual([...a.errors, ...b.errors], [])
})

test('replay: the slider scrubs to earlier instants of the session, then back to live', { skip: missing ?? false }, async () => {
  const room = roomName('replay')
  const a = await openBoard(room, ADA)
  // Three changes, each stored at an instant of its own.
  for (const [kind, x, label] of [['service', 0, 'First'], ['database', 300, 'Second'], ['cache', 600, 'Third']]) {
    await a.evaluate(([k, px, l]) => window.tandemx.addNode(k, px, 0, l), [kind, x, label])
    await a.waitForTimeout(120)
  }
  await a.evaluate(() => window.tandemx.board.rename(window.tandemx.nodes().find((n) => n.label === 'First').id, 'First renamed'))
  await a.waitForTimeout(120)

  await openHistory(a, 'replay')
  await noPanelError(a, 'loading the replay')
  await a.waitForSelector('#replay-slider:not([disabled])')
  const stops = await a.evaluate(() => window.tandemx.history.stops())
  assert.ok(stops.length >= 4, `one stop per instant: ${JSON.stringify(stops)}`)
  assert.match(await a.textContent('#replay-summary'), /stored changes from/)

  // Home: the first instant, the first node only.
  await a.focus('#replay-slider')
  await a.keyboard.press('Home')
  await previewIs(a, ['First'], 'the first instant')
  assert.match(await a.textContent('#replay-label'), /change 1 of \d+/)
  assert.match(await a.textContent('#preview-title'), /As it was at/)
  await shot(a, 'history-replay.png')
  // One step on: the second node is there too.
  await a.keyboard.press('ArrowRight')
  await previewIs(a, ['First', 'Second'], 'the second instant')
  // The end: the last stored instant, as the board is now.
  await a.keyboard.press('End')
  await previewIs(a, ['First renamed', 'Second', 'Third'], 'the last instant')
  // The instant before the rename shows the old name.
  await a.keyboard.press('ArrowLeft')
  await previewIs(a, ['First', 'Second', 'Third'], 'before the rename')

  // Back to live: the preview closes and the live board is as it was all along.
  await a.click('#replay-live')
  await a.waitForSelector('#preview', { state: 'hidden' })
  assert.equal(await a.evaluate(() => window.tandemx.preview()), null)
  await boardIs(a, ['First renamed', 'Second', 'Third'], 'the live board')
  // Live edits go on while the panel is open; a reload of the changes includes them.
  await a.evaluate(() => window.tandemx.addNode('queue', 0, 300, 'Fourth'))
  await a.waitForTimeout(120)
  await a.click('#replay-reload')
  await idle(a)
  assert.equal((await a.evaluate(() => window.tandemx.history.stops())).length, stops.length + 1)
  assert.deepEqual(a.errors, [])
})

test('a viewer sees history read-only: lists and previews, no restore, fork or merge; a refusal is shown', { skip: missing ?? false }, async () => {
  const room = roomName('history-viewer')
  const editor = await openBoard(room, ADA)
  await editor.evaluate(() => window.tandemx.addNode('service', 0, 0, 'Billing'))
  await openHistory(editor)
  await editor.fill('#version-name', 'Billing only')
  await editor.click('#version-save')
  await versionRow(editor, 'Billing only').waitFor({ timeout: 10_000 })
  await editor.evaluate(() => window.tandemx.addNode('queue', 300, 0, 'Invoices'))

  const viewer = await openBoard(room, GRACE, 'viewer')
  await boardIs(viewer, ['Billing', 'Invoices'], 'the viewer loaded')
  await openHistory(viewer)
  const row = versionRow(viewer, 'Billing only')
  await row.waitFor({ timeout: 10_000 })
  assert.equal(await viewer.isVisible('#history-readonly'), true)
  assert.match(await viewer.textContent('#history-readonly'), /signed in as a viewer/)
  for (const sel of ['#version-save', '#version-name']) assert.equal(await viewer.isDisabled(sel), true, `${sel} disabled`)
  for (const act of ['restore', 'fork']) {
    const button = row.locator(`[data-act="${act}"]`)
    assert.equal(await button.isDisabled(), true, `${act} disabled`)
    assert.match(await button.getAttribute('title'), /needs an editor; you are signed in as a viewer/)
  }
  // Reading is allowed: preview and compare.
  await row.locator('[data-act="preview"]').click()
  await previewIs(viewer, ['Billing'], "the viewer's preview")
  assert.equal(await viewer.locator('#preview-actions button').isDisabled(), true, 'no restore from the preview either')
  await viewer.click('#preview-close')
  await row.locator('[data-act="diff"]').click()
  await viewer.waitForSelector('#diff .diff-lines')
  assert.match(await viewer.textContent('#diff'), /Added queue “Invoices”/)

  // Branches: listed, but neither fork nor merge.
  await openHistory(viewer, 'branches')
  for (const sel of ['#branch-create', '#branch-name', '#branch-from']) assert.equal(await viewer.isDisabled(sel), true, `${sel} disabled`)
  await shot(viewer, 'history-viewer.png')

  // A restore forced past the disabled button is refused by the server, and the panel says so.
  await openHistory(viewer, 'versions')
  await row.locator('[data-act="restore"]').evaluate((b) => { b.disabled = false })
  await row.locator('[data-act="restore"]').click()
  await viewer.waitForSelector('#history-error:not([hidden])')
  assert.equal(await viewer.getAttribute('#history-error', 'data-status'), '403')
  assert.match(await viewer.textContent('#history-error-text'), /^Restoring version #\d+ failed: .*403/)
  await editor.waitForTimeout(300)
  await boardIs(editor, ['Billing', 'Invoices'], 'nothing was restored')
  assert.deepEqual([...editor.errors, ...viewer.errors], [])
})
