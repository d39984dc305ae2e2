// The demo's conversations in real browsers (Debian's Chromium through playwright-core, against
// the worker under `wrangler dev` serving client/dist): comment pins on the canvas and on a node
// (following it, orphaned once it is deleted), the thread panel live between two browsers
// (replies, reactions, edits, deletes, resolve), mention autocomplete and the inbox, the chat
// with "typing…", what viewers and commenters may do, and reviews gating a branch's merge.
// Every step goes through the page's own controls; window.tandemx only builds boards quickly
// and reads what the pages hold.

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
const VIC = { name: 'Vic', color: '#2f9e44' }
/** The development sign-in's project (src/edge/v1/tokens.rs `DEV_PROJECT`). */
const DEV_PROJECT = 'prj_dev'

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
const me = (page) => page.evaluate(() => window.tandemx.me())

/** The client (screen) point of the world point (x, y) of `page`'s live canvas. */
const screenOf = (page, x, y) => page.evaluate(([wx, wy]) => {
  const r = window.tandemx.canvas.svg.getBoundingClientRect()
  const v = window.tandemx.canvas.view
  return { x: r.left + wx * v.k + v.x, y: r.top + wy * v.k + v.y }
}, [x, y])

/** Where a pin points: its bottom-left corner (the speech bubble's tail). */
async function pinTip (locator) {
  const b = await locator.boundingBox()
  return { x: b.x + 2, y: b.y + b.height }
}

/** Waits until `locator`'s pin points at the world point (x, y) of `page` (within 3 px). */
async function pinAt (page, locator, x, y, what) {
  let last
  for (let i = 0; i < 100; i++) {
    const [tip, want] = await Promise.all([pinTip(locator), screenOf(page, x, y)])
    last = { tip, want }
    if (Math.abs(tip.x - want.x) <= 3 && Math.abs(tip.y - want.y) <= 3) return
    await page.waitForTimeout(50)
  }
  assert.fail(`${what}: the pin is at ${JSON.stringify(last.tip)}, not at ${JSON.stringify(last.want)}`)
}

/** Opens the comments panel (if closed). */
async function openComments (page) {
  if (!(await page.isVisible('#threads'))) await page.click('#comments-toggle')
  await page.waitForSelector('#threads:not([hidden])')
}

/** Places a comment with the Comment tool at the world point (x, y) and posts `text`. */
async function commentAt (page, x, y, text) {
  await page.click('#comment-tool')
  assert.equal(await page.getAttribute('#comment-tool', 'aria-pressed'), 'true')
  const p = await screenOf(page, x, y)
  await page.mouse.click(p.x, p.y)
  await page.waitForSelector('#thread-new:not([hidden])')
  assert.equal(await page.getAttribute('#comment-tool', 'aria-pressed'), 'false', 'the tool is used once')
  const before = await page.evaluate(() => window.tandemx.threads.threads().map((t) => t.id))
  await page.fill('#thread-new-text', text)
  await page.click('#thread-new-post')
  await page.waitForSelector('#thread-new', { state: 'hidden', timeout: 10_000 })
  await noPanelError(page, '#threads', `posting “${text}”`)
  const id = await page.waitForFunction((old) => {
    const fresh = window.tandemx.threads.threads().map((t) => t.id).filter((t) => !old.includes(t))
    return fresh.length === 1 ? fresh[0] : null
  }, before, { timeout: 10_000 })
  return await id.jsonValue()
}

/** Fails with the panel's error, if it shows one. */
async function noPanelError (page, panel, what) {
  const sel = `${panel}-error`
  if (await page.isVisible(sel)) assert.fail(`${what}: the panel shows ${await page.textContent(sel)}`)
}

const thread = (page, id) => page.locator(`#thread-list li.thread[data-thread="${id}"]`)
const pin = (page, id) => page.locator(`#pins .pin[data-thread="${id}"]`)

/** Calls the API with the test server's admin secret (owner of every project). */
async function admin (method, path, body) {
  const res = await fetch(`${server.url}/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${server.adminSecret}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await res.text()
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`)
  return JSON.parse(text)
}

const shot = async (page, file) => {
  fs.mkdirSync(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: new URL(file, ARTIFACTS).pathname })
}

test('comment pins: on the canvas and on a node, which the pin follows; deleting the node orphans its thread', { skip: missing ?? false }, async () => {
  const room = roomName('pins')
  const a = await openBoard(room, ADA)
  const b = await openBoard(room, GRACE)
  const api = await a.evaluate(() => window.tandemx.addNode('service', 0, 0, 'API'))
  await b.waitForFunction((id) => window.tandemx.nodes().some((n) => n.id === id), api)

  // A pin on the empty canvas: a point anchor where it was clicked.
  const free = await commentAt(a, 260, 170, 'Should the gateway live here?')
  const freeThread = await a.evaluate((id) => window.tandemx.threads.threads().find((t) => t.id === id), free)
  assert.deepEqual(freeThread.anchor, { type: 'point', x: 260, y: 170 })
  await pinAt(a, pin(a, free), 260, 170, "Ada's pin on the canvas")
  assert.equal(await pin(a, free).textContent(), '1', 'the pin counts its comments')
  // Grace's board shows it live, at the same world point of her own view.
  await pin(b, free).waitFor({ timeout: 5_000 })
  await pinAt(b, pin(b, free), 260, 170, "Grace's pin on the canvas")

  // A pin on the node (the node spans -84..84 x -32..32): anchored on nodes/<id>.
  const onNode = await commentAt(a, 40, 10, 'This needs rate limiting')
  assert.match(await thread(a, onNode).locator('.thread-anchor').textContent(), /^On “API”$/)
  const nodeThread = await a.evaluate((id) => window.tandemx.threads.threads().find((t) => t.id === id), onNode)
  assert.deepEqual(nodeThread.anchor, { type: 'point', x: 40, y: 10, node: { map: 'nodes', key: api } })
  await pin(b, onNode).waitFor({ timeout: 5_000 })
  assert.equal(await pin(b, onNode).getAttribute('data-node'), api)
  await pinAt(b, pin(b, onNode), 40, 10, "Grace's pin on the node")

  // The node moves (top-left from -84,-32 to -400,-260): the pin moves with it, in both browsers.
  await a.evaluate((id) => window.tandemx.board.moveNodes([{ id, x: -400, y: -260 }]), api)
  await pinAt(a, pin(a, onNode), -276, -218, "Ada's pin after the move")
  await pinAt(b, pin(b, onNode), -276, -218, "Grace's pin after the move")
  await pinAt(b, pin(b, free), 260, 170, 'the canvas pin stays')
  // Clicking a pin opens its thread.
  await pin(b, onNode).click()
  await b.waitForSelector(`#threads:not([hidden]) li.thread.selected[data-thread="${onNode}"]`)
  assert.match(await thread(b, onNode).locator('.comment-body').first().textContent(), /This needs rate limiting/)
  assert.equal(await thread(b, onNode).locator('.badge.orphan').count(), 0)
  await shot(b, 'conversations-pins.png')

  // The node is deleted: its thread is orphaned ("node deleted"), in both browsers, and kept.
  await a.evaluate((id) => window.tandemx.board.delete([id]), api)
  await b.waitForSelector(`#pins .pin.orphaned[data-thread="${onNode}"]`, { timeout: 5_000 })
  await thread(b, onNode).locator('.badge.orphan').waitFor()
  assert.equal(await thread(b, onNode).locator('.badge.orphan').textContent(), 'node deleted')
  assert.equal(await b.evaluate((id) => window.tandemx.threads.orphaned(id), onNode), true)
  await openComments(a)
  await thread(a, onNode).locator('.badge.orphan').waitFor()
  assert.equal(await thread(a, free).locator('.badge.orphan').count(), 0, 'the canvas pin is not orphaned')
  assert.equal(await a.textContent('#threads-open-count'), '2')
  await shot(b, 'conversations-orphaned.png')
  assert.deepEqual([...a.errors, ...b.errors], [])
})

test('threads: a reply appears live in the other browser; reactions toggle; edits and deletes show; resolve moves the thread to Resolved', { skip: missing ?? false }, async () => {
  const room = roomName('threads')
  const a = await openBoard(room, ADA)
  const b = await openBoard(room, GRACE)
  const id = await commentAt(a, 100, 80, 'Which database for orders?')
  await openComments(b)
  await thread(b, id).waitFor({ timeout: 5_000 })
  await thread(b, id).locator('.thread-head').click()
  await b.waitForSelector(`li.thread.selected[data-thread="${id}"]`)
  assert.match(await thread(b, id).locator('.comment .author').first().textContent(), /^Ada$/, 'authors are named from presence')

  // Grace replies; Ada's open thread shows the reply within a moment.
  await thread(b, id).locator('form.reply textarea').fill('Postgres, with a read replica')
  const sent = Date.now()
  await thread(b, id).locator('[data-act="reply"]').click()
  await a.waitForFunction((tid) => {
    const li = document.querySelector(`#thread-list li.thread[data-thread="${tid}"]`)
    return li !== null && li.querySelectorAll('.comment').length === 2 && /read replica/.test(li.textContent)
  }, id, { timeout: 5_000 })
  const latency = Date.now() - sent
  assert.ok(latency < 3_000, `the reply reached the other browser in ${latency} ms`)
  await noPanelError(b, '#threads', 'replying')
  assert.equal(await thread(b, id).locator('form.reply textarea').inputValue(), '', 'the reply box is emptied')
  assert.equal(await pin(a, id).textContent(), '2')
  const reply = thread(a, id).locator('li.comment').nth(1)
  assert.match(await reply.locator('.author').textContent(), /^Grace$/)
  assert.match(await reply.locator('time').textContent(), /^\d\d:\d\d:\d\d$/)
  assert.equal(await reply.locator('[data-act="edit"]').count(), 0, 'no edit of another\'s comment')

  // Ada reacts 👍 on Grace's reply: pressed for her, counted for both; again takes it back.
  await reply.locator('.react[data-emoji="👍"]').click()
  await a.waitForSelector(`li.thread[data-thread="${id}"] li.comment:nth-child(2) .react[data-emoji="👍"][aria-pressed="true"]`)
  assert.equal(await reply.locator('.react[data-emoji="👍"] .n').textContent(), '1')
  const graceReply = thread(b, id).locator('li.comment').nth(1)
  await b.waitForFunction((tid) => document.querySelector(`li.thread[data-thread="${tid}"] li.comment:nth-child(2) .react[data-emoji="👍"] .n`)?.textContent === '1', id, { timeout: 5_000 })
  assert.equal(await graceReply.locator('.react[data-emoji="👍"]').getAttribute('aria-pressed'), 'false', 'not Grace\'s reaction')
  await reply.locator('.react[data-emoji="👍"]').click()
  await a.waitForSelector(`li.thread[data-thread="${id}"] li.comment:nth-child(2) .react[data-emoji="👍"][aria-pressed="false"]`)
  await b.waitForFunction((tid) => document.querySelector(`li.thread[data-thread="${tid}"] li.comment:nth-child(2) .react[data-emoji="👍"] .n`)?.textContent === '', id, { timeout: 5_000 })
  await noPanelError(a, '#threads', 'reacting')

  // Grace edits her reply: Ada sees the new text, marked edited.
  await graceReply.locator('[data-act="edit"]').click()
  await graceReply.locator('form.edit textarea').fill('Postgres, with two read replicas')
  await graceReply.locator('form.edit button[type="submit"]').click()
  await a.waitForFunction((tid) => /two read replicas/.test(document.querySelector(`li.thread[data-thread="${tid}"] li.comment:nth-child(2) .comment-body`)?.textContent ?? ''), id, { timeout: 5_000 })
  assert.equal(await reply.locator('.edited').textContent(), '(edited)')
  // A third comment, then Grace deletes it: a tombstone stays in its place.
  await thread(b, id).locator('form.reply textarea').fill('Actually, ignore me')
  await thread(b, id).locator('[data-act="reply"]').click()
  await a.waitForFunction((tid) => document.querySelectorAll(`li.thread[data-thread="${tid}"] li.comment`).length === 3, id, { timeout: 5_000 })
  await thread(b, id).locator('li.comment').nth(2).locator('[data-act="delete"]').click()
  await a.waitForSelector(`li.thread[data-thread="${id}"] li.comment.deleted .tombstone`, { timeout: 5_000 })
  assert.match(await thread(a, id).locator('.tombstone').textContent(), /^Comment deleted by Grace/)
  assert.equal(await pin(a, id).textContent(), '2', 'deleted comments are not counted')
  await noPanelError(b, '#threads', 'editing and deleting')
  await shot(a, 'conversations-thread.png')

  // Ada resolves it: it leaves the Open list (and the canvas) for Resolved, in both browsers.
  await thread(a, id).locator('[data-act="resolve"]').click()
  await thread(a, id).waitFor({ state: 'detached', timeout: 5_000 })
  await noPanelError(a, '#threads', 'resolving')
  assert.equal(await a.textContent('#threads-open-count'), '0')
  assert.equal(await a.textContent('#threads-resolved-count'), '1')
  assert.equal(await pin(a, id).count(), 0, 'no pin for a resolved thread in the Open view')
  await thread(b, id).waitFor({ state: 'detached', timeout: 5_000 })
  await b.click('#threads [data-filter="resolved"]')
  await thread(b, id).waitFor()
  assert.equal(await thread(b, id).locator('.tag-resolved').textContent(), 'resolved')
  assert.match(await pin(b, id).getAttribute('class'), /\bresolved\b/, 'resolved pins show in the Resolved view')
  // Reopened, it is back.
  await a.click('#threads [data-filter="resolved"]')
  await thread(a, id).locator('.thread-head').click()
  assert.equal(await thread(a, id).locator('[data-act="resolve"]').textContent(), 'Reopen')
  await thread(a, id).locator('[data-act="resolve"]').click()
  await b.waitForFunction(() => document.querySelector('#threads-open-count').textContent === '1', null, { timeout: 5_000 })
  assert.deepEqual([...a.errors, ...b.errors], [])
})

test('mentions: typing @ offers members; the mentioned user\'s inbox badge counts it, opens the thread, and clears when read', { skip: missing ?? false }, async () => {
  const room = roomName('mentions')
  const a = await openBoard(room, ADA)
  const b = await openBoard(room, GRACE)
  const grace = await me(b)
  assert.match(grace, /^dev-grace-[0-9a-f]{6}$/)
  assert.equal(await b.isVisible('#inbox-count'), false, 'nothing unread yet')

  await a.click('#comment-tool')
  const p = await screenOf(a, 50, 50)
  await a.mouse.click(p.x, p.y)
  await a.focus('#thread-new-text')
  await a.keyboard.type('Can you check the limits, @gra')
  const option = a.locator(`.mention-menu:not([hidden]) .mention-option[data-sub="${grace}"]`)
  await option.waitFor({ timeout: 10_000 })
  assert.match(await option.textContent(), /Grace/)
  assert.match(await option.textContent(), /here/, 'present in the room')
  // Members who match “gra” only (earlier tests' Graces too), the one in the room first.
  const offered = await a.locator('.mention-menu:not([hidden]) .mention-option').evaluateAll((els) => els.map((e) => e.dataset.sub))
  assert.equal(offered[0], grace, `offered: ${offered}`)
  assert.ok(offered.every((sub) => /gra/i.test(sub)), `offered: ${offered}`)
  await option.click()
  assert.equal(await a.inputValue('#thread-new-text'), `Can you check the limits, @${grace} `)
  await a.keyboard.type('please?')
  await a.click('#thread-new-post')
  await a.waitForSelector('#thread-new', { state: 'hidden', timeout: 10_000 })
  await noPanelError(a, '#threads', 'posting the mention')
  const mention = a.locator('#thread-list .comment-body .mention').first()
  await mention.waitFor()
  assert.equal(await mention.textContent(), '@Grace')
  assert.equal(await mention.getAttribute('data-user'), grace)
  const [tid] = await a.evaluate(() => window.tandemx.threads.threads().map((t) => t.id))
  const body = await a.evaluate(() => window.tandemx.threads.threads()[0].comments[0].body)
  assert.deepEqual(body.content[0].children.find((c) => c.type === 'mention'), { type: 'mention', user: grace })

  // Grace's badge says 1, live.
  await b.waitForSelector('#inbox-count:not([hidden])', { timeout: 5_000 })
  assert.equal(await b.textContent('#inbox-count'), '1')
  assert.equal(await a.isVisible('#inbox-count'), false, 'the author is not notified')
  await b.click('#inbox-toggle')
  const n = b.locator('#inbox-list li.notification.unread[data-kind="mention"]')
  await n.waitFor()
  assert.match(await n.textContent(), /Ada mentioned you on this board/)
  assert.match(await n.textContent(), /Can you check the limits/)
  await shot(b, 'conversations-inbox.png')
  // Mark all read clears the badge.
  await b.click('#inbox-read-all')
  await b.waitForSelector('#inbox-count', { state: 'hidden', timeout: 5_000 })
  await b.waitForSelector('#inbox-list li.notification:not(.unread)')
  assert.equal(await b.isVisible('#inbox-error'), false)
  // A notification opens its thread.
  await b.click('#inbox-list li.notification')
  await b.waitForSelector(`#threads:not([hidden]) li.thread.selected[data-thread="${tid}"]`)
  assert.equal(await b.isVisible('#inbox-menu'), false)

  // A mention typed in a reply, picked with the keyboard, notifies again.
  const box = thread(b, tid).locator('form.reply textarea')
  await box.focus()
  await b.keyboard.type('On it @ad')
  const ada = await me(a)
  // The one in the room comes first (earlier tests' Adas are members too).
  await b.locator(`.mention-menu:not([hidden]) .mention-option.active[data-sub="${ada}"]`).waitFor({ timeout: 10_000 })
  await b.keyboard.press('Enter')
  assert.equal(await box.inputValue(), `On it @${ada} `, 'Enter picks the member')
  await b.keyboard.press('Control+Enter')
  await a.waitForSelector('#inbox-count:not([hidden])', { timeout: 5_000 })
  assert.equal(await a.textContent('#inbox-count'), '1')
  assert.deepEqual([...a.errors, ...b.errors], [])
})

test('chat: a message appears live in the other browser, with "typing…" while it is written', { skip: missing ?? false }, async () => {
  const room = roomName('chat')
  const a = await openBoard(room, ADA)
  const b = await openBoard(room, GRACE)
  await a.click('#chat-toggle')
  await b.click('#chat-toggle')
  await a.waitForSelector('#chat:not([hidden])')
  await b.waitForSelector('#chat:not([hidden])')
  assert.match(await a.textContent('#chat-empty'), /No messages yet/)

  // Grace types: Ada sees "Grace is typing…" (awareness, not a message).
  await b.focus('#chat-input')
  await b.keyboard.type('Deploy at')
  await a.waitForFunction(() => document.querySelector('#chat-typing').textContent === 'Grace is typing…', null, { timeout: 5_000 })
  assert.equal(await b.textContent('#chat-typing'), '', 'one does not see oneself typing')
  await shot(a, 'conversations-typing.png')
  // Idle for a while: the indicator goes.
  await a.waitForFunction(() => document.querySelector('#chat-typing').textContent === '', null, { timeout: 6_000 })
  // Enter sends; the message appears in Ada's chat within a moment.
  await b.keyboard.type(' five?')
  await a.waitForFunction(() => document.querySelector('#chat-typing').textContent === 'Grace is typing…', null, { timeout: 5_000 })
  const sent = Date.now()
  await b.keyboard.press('Enter')
  await a.waitForFunction(() => /Deploy at five\?/.test(document.querySelector('#chat-list')?.textContent ?? ''), null, { timeout: 5_000 })
  const latency = Date.now() - sent
  assert.ok(latency < 3_000, `the message reached the other browser in ${latency} ms`)
  assert.equal(await b.inputValue('#chat-input'), '')
  assert.match(await a.locator('#chat-list .chat-msg .author').first().textContent(), /^Grace$/)
  assert.match(await b.locator('#chat-list .chat-msg .author').first().textContent(), /^you$/)
  // Sending clears the indicator at once.
  await a.waitForFunction(() => document.querySelector('#chat-typing').textContent === '', null, { timeout: 2_000 })
  await noPanelError(b, '#chat', 'sending')

  // A mention in the chat: Enter picks from the menu (it does not send), then sends.
  await a.focus('#chat-input')
  await a.keyboard.type('Fine by me @gr')
  const grace = await me(b)
  await a.locator(`.mention-menu:not([hidden]) .mention-option.active[data-sub="${grace}"]`).waitFor({ timeout: 10_000 })
  await a.keyboard.press('Enter')
  assert.equal(await a.inputValue('#chat-input'), `Fine by me @${grace} `)
  await a.keyboard.press('Enter')
  await b.waitForFunction(() => document.querySelectorAll('#chat-list .chat-msg').length === 2, null, { timeout: 5_000 })
  assert.equal(await b.textContent('#chat-list .chat-msg:nth-child(2) .mention'), '@Grace')
  await b.waitForSelector('#inbox-count:not([hidden])', { timeout: 5_000 })
  // A message while the chat is closed shows as unread on its button.
  await b.click('#chat-close')
  await a.fill('#chat-input', 'One more thing')
  await a.keyboard.press('Enter')
  await b.waitForSelector('#chat-unread:not([hidden])', { timeout: 5_000 })
  assert.equal(await b.textContent('#chat-unread'), '1')
  await b.click('#chat-toggle')
  await b.waitForSelector('#chat-unread', { state: 'hidden' })
  await shot(b, 'conversations-chat.png')
  assert.deepEqual([...a.errors, ...b.errors], [])
})

test('roles: a viewer reads threads and chat with every input disabled and the reason said; a commenter comments on a read-only canvas', { skip: missing ?? false }, async () => {
  const room = roomName('talk-roles')
  const editor = await openBoard(room, ADA)
  const node = await editor.evaluate(() => window.tandemx.addNode('database', 0, 0, 'Orders'))
  const tid = await commentAt(editor, 0, 0, 'Sharding plan?')
  await editor.click('#chat-toggle')
  await editor.fill('#chat-input', 'Hello room')
  await editor.keyboard.press('Enter')
  await editor.waitForSelector('#chat-list .chat-msg')

  const viewer = await openBoard(room, VIC, 'viewer')
  assert.equal(await viewer.isDisabled('#comment-tool'), true)
  assert.match(await viewer.getAttribute('#comment-tool', 'title'), /needs a commenter role or more; you are signed in as a viewer/)
  await openComments(viewer)
  await thread(viewer, tid).waitFor({ timeout: 5_000 })
  assert.match(await viewer.textContent('#threads-readonly'), /signed in as a viewer: you can read the threads/)
  await thread(viewer, tid).locator('.thread-head').click()
  const reply = thread(viewer, tid).locator('form.reply textarea')
  assert.equal(await reply.isDisabled(), true)
  assert.match(await reply.getAttribute('placeholder'), /signed in as a viewer/)
  assert.equal(await thread(viewer, tid).locator('[data-act="reply"]').isDisabled(), true)
  assert.equal(await thread(viewer, tid).locator('[data-act="resolve"]').isDisabled(), true)
  assert.equal(await thread(viewer, tid).locator('.react').first().isDisabled(), true)
  await viewer.click('#chat-toggle')
  await viewer.waitForSelector('#chat-list .chat-msg')
  assert.match(await viewer.textContent('#chat-list'), /Hello room/)
  assert.equal(await viewer.isDisabled('#chat-input'), true)
  assert.equal(await viewer.isDisabled('#chat-send'), true)
  assert.match(await viewer.getAttribute('#chat-input', 'placeholder'), /signed in as a viewer/)
  assert.match(await viewer.textContent('#chat-readonly'), /you can read the chat, not write in it/)
  await shot(viewer, 'conversations-viewer.png')
  // A reply forced past the disabled box is refused by the server, and the panel says so.
  await reply.evaluate((el) => { el.disabled = false; el.value = 'let me in' })
  await thread(viewer, tid).locator('[data-act="reply"]').evaluate((el) => { el.disabled = false })
  await thread(viewer, tid).locator('[data-act="reply"]').click()
  await viewer.waitForSelector('#threads-error:not([hidden])', { timeout: 5_000 })
  assert.equal(await viewer.getAttribute('#threads-error', 'data-status'), '403')
  assert.match(await viewer.textContent('#threads-error-text'), /^Replying failed: .*403/)

  // A commenter: the canvas is read-only, comments are not.
  const commenter = await openBoard(room, GRACE, 'commenter')
  assert.equal(await commenter.evaluate(() => window.tandemx.board.readOnly), true)
  assert.equal(await commenter.isDisabled('[data-add="service"]'), true)
  assert.equal(await commenter.isDisabled('#comment-tool'), false)
  const own = await commentAt(commenter, 30, 0, 'Commenters can comment')
  const t = await commenter.evaluate((id) => window.tandemx.threads.threads().find((x) => x.id === id), own)
  assert.deepEqual(t.anchor.node, { map: 'nodes', key: node })
  await thread(editor, own).waitFor({ timeout: 5_000 })
  // Their own thread they may resolve; the editor's they may not.
  assert.equal(await thread(commenter, own).locator('[data-act="resolve"]').isDisabled(), false)
  assert.equal(await thread(commenter, tid).locator('[data-act="resolve"]').isDisabled(), true)
  assert.deepEqual((await commenter.evaluate(() => window.tandemx.nodes())).map((n) => n.label), ['Orders'], 'the canvas is unchanged')
  assert.deepEqual([...editor.errors, ...viewer.errors, ...commenter.errors], [])
})

test('reviews: with require_review_for_merge the merge shows the 409 until the reviewer approves, then merges', { skip: missing ?? false, timeout: 180_000 }, async () => {
  const room = roomName('review')
  const a = await openBoard(room, ADA)
  const b = await openBoard(room, GRACE, 'commenter')
  const grace = await me(b)
  const ada = await me(a)
  await a.evaluate(() => window.tandemx.addNode('service', 0, 0, 'Web'))

  // Ada forks a branch and opens it in the same tab (the tab keeps its user).
  await a.click('#history-toggle')
  await a.click('#history [role="tab"][data-tab="branches"]')
  await a.waitForSelector('#history[aria-busy="false"]')
  await a.fill('#branch-name', 'draft')
  await a.click('#branch-create')
  await a.waitForSelector('#branch-created:not([hidden]) #branch-open', { timeout: 15_000 })
  const branch = `${room}~draft`
  await a.click('#branch-open')
  await a.waitForFunction((name) => document.querySelector('#room-name')?.textContent === name, branch)
  await synced(a)
  assert.equal(await me(a), ada, 'the same user on the branch')
  await a.waitForFunction(() => window.tandemx.nodes().length === 1)
  await a.evaluate(() => window.tandemx.addNode('cache', 300, 0, 'Cache'))

  // The project now requires a review (an owner's setting: the test sets it with the admin secret).
  const settings = await admin('PATCH', `/projects/${DEV_PROJECT}`, { require_review_for_merge: true })
  assert.equal(settings.require_review_for_merge, true)
  try {
    await a.click('#history-toggle')
    await a.click('#history [role="tab"][data-tab="branches"]')
    await a.waitForSelector('#branch-parent:not([hidden]) .self-reviews .review-list')
    await a.waitForSelector('#history[aria-busy="false"]')
    await a.click('#branch-parent [data-act="merge"][data-target="self"]')
    await a.waitForSelector('#history-error:not([hidden])', { timeout: 10_000 })
    assert.equal(await a.getAttribute('#history-error', 'data-status'), '409')
    assert.match(await a.textContent('#history-error-text'), /^Merging “.*~draft” failed: .*requires an approved review.*409/)
    await a.waitForSelector('#branch-parent .self-reviews .review-list .empty')
    assert.match(await a.textContent('#branch-parent .self-reviews .review-list'), /No reviews yet/)
    await shot(a, 'conversations-merge-refused.png')

    // Ada asks Grace for a review.
    const pick = a.locator(`#branch-parent .reviewer-pick input[value="${grace}"]`)
    await pick.waitFor({ timeout: 10_000 })
    // Grace is not in the branch's room, so she is named by her id here.
    assert.match(await pick.locator('xpath=..').textContent(), new RegExp(`${grace} commenter`))
    await pick.check()
    await a.fill('#branch-parent .review-note', 'Ready for a look')
    await a.click('#branch-parent [data-act="request"]')
    const review = a.locator('#branch-parent .review[data-state="pending"]')
    await review.waitFor({ timeout: 10_000 })
    assert.equal(await a.textContent('#history-info'), `Asked ${grace} to review “this branch” (review #${await review.getAttribute('data-review')}).`)
    assert.match(await review.textContent(), /Ready for a look/)
    assert.equal(await review.locator(`[data-reviewer="${grace}"]`).textContent(), `${grace}: waiting`)
    assert.equal(await review.locator('[data-act="approve"]').count(), 0, 'the requester gives no verdict')
    // Still pending: still refused.
    await a.click('#branch-parent [data-act="merge"][data-target="self"]')
    await a.waitForSelector('#history-error:not([hidden])', { timeout: 10_000 })
    assert.match(await a.textContent('#history-error-text'), /wait for approval.*409/)

    // Grace hears of it in her inbox; the notification opens the review on her board's panel.
    await b.click('#inbox-toggle')
    const n = b.locator('#inbox-list li.notification[data-kind="review"]')
    await n.waitFor({ timeout: 20_000 })
    await n.click()
    const theirs = b.locator(`#branch-list [data-branch="${branch}"] .review[data-state="pending"]`)
    await theirs.waitFor({ timeout: 10_000 })
    // She requests changes first, with a comment, then approves.
    await theirs.locator('.verdict-comment').fill('Add a TTL to the cache')
    await theirs.locator('[data-act="request-changes"]').click()
    const changes = b.locator(`#branch-list [data-branch="${branch}"] .review[data-state="changes_requested"]`)
    await changes.waitFor({ timeout: 10_000 })
    assert.match(await changes.locator(`[data-reviewer="${grace}"]`).textContent(), /^you: changes requested — “Add a TTL to the cache”$/)
    await changes.locator('[data-act="approve"]').click()
    await b.locator(`#branch-list [data-branch="${branch}"] .review[data-state="approved"]`).waitFor({ timeout: 10_000 })
    assert.equal(await b.isVisible('#history-error'), false, await b.textContent('#history-error-text'))
    await shot(b, 'conversations-review-approved.png')

    // Ada sees it approved without reloading (the branch's room tells of the review), and the
    // merge goes through.
    await a.waitForSelector('#branch-parent .review[data-state="approved"]', { timeout: 10_000 })
    await a.click('#branch-parent [data-act="merge"][data-target="self"]')
    await a.waitForFunction(() => /Merged “.*” into “.*”/.test(document.querySelector('#history-info').textContent), null, { timeout: 15_000 })
    assert.equal(await a.isVisible('#history-error'), false)
    await b.waitForFunction(() => window.tandemx.nodes().map((n) => n.label).sort().join() === 'Cache,Web', null, { timeout: 10_000 })
  } finally {
    await admin('PATCH', `/projects/${DEV_PROJECT}`, { require_review_for_merge: false })
  }
  assert.deepEqual([...a.errors, ...b.errors], [])
})
