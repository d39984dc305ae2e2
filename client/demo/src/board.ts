// The board page: connects to the room, wires the canvas, the toolbar, the status line, the
// presence list, the minimap, the history panel, the conversations (comment pins and
// threads, chat, the inbox), the assets (the panel, images dropped on the canvas) and the
// voice/video call.

import {
  ApiError,
  assetUri,
  connect,
  createAssetLinks,
  createPresence,
  subscribeChat,
  subscribeInbox,
  subscribeThreads,
  type Asset,
  type Connection,
  type Notification,
  type Peer,
  type Role,
  type StatusEvent
} from '../../src/index.js'
import { mountCall } from './call.js'
import { CanvasView } from './canvas.js'
import { mountChat } from './chat.js'
import { mountHistory } from './history.js'
import type { Identity } from './identity.js'
import { mountInbox } from './inbox.js'
import { mountLibrary } from './library.js'
import { mountMinimap } from './minimap.js'
import { Board, NODE_H, NODE_KINDS, NODE_W, imageBox, type NodeKind } from './model.js'
import { Preview } from './preview.js'
import { BRANCH_SEPARATOR, createSession } from './session.js'
import { createPeople, createTyping, type Talk } from './talk.js'
import { mountThreads } from './threads.js'
import { createUploads, mountUploadCards } from './uploads.js'

const $ = <T extends HTMLElement>(sel: string): T => {
  const el = document.querySelector<T>(sel)
  if (el === null) throw new Error(`missing ${sel}`)
  return el
}

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c] ?? c))

/** Shows a short message at the bottom of the canvas. */
function toast (text: string, kind: 'info' | 'warn' = 'info'): void {
  const box = $('#toasts')
  const el = document.createElement('div')
  el.className = `toast ${kind}`
  el.textContent = text
  box.appendChild(el)
  setTimeout(() => { el.classList.add('leaving') }, 3600)
  setTimeout(() => { el.remove() }, 4000)
}

/** Opens `room` on `server` as `me`. */
export function openBoard (server: string, room: string, me: Identity): void {
  $('#landing').hidden = true
  $('#board').hidden = false
  document.title = `${room} · TandemX`
  $('#room-name').textContent = room

  // Development sign-in: POST /v1/dev/token, for the board and its branches (session.ts); the
  // same token authorizes the history panel's HTTP calls. A 404 means the server has no dev
  // sign-in: connect without a token and say so.
  let roleChanged = (): void => {}
  const session = createSession(server, room, me, () => roleChanged())
  const role = (): Role => session.role ?? me.role

  // events: the room pushes conversation changes on this socket (threads, chat, the inbox).
  const connection: Connection = connect({ url: server, room, getToken: session.getToken, events: true })
  const board = new Board(connection.doc)
  const presence = createPresence(connection.awareness, { throttleMs: 30 })
  presence.setUser({ name: me.name, color: me.color, role: me.role })
  // The user id beside the name, so others' panels can name this user's comments.
  connection.awareness.setLocalStateField('sub', session.sub)
  const canvas = new CanvasView($('#stage'), board, presence)
  mountMinimap($('#minimap'), canvas)

  // --- permissions -------------------------------------------------------------------------
  const setReadOnly = (readOnly: boolean): void => {
    board.readOnly = readOnly
    document.body.classList.toggle('read-only', readOnly)
    for (const b of document.querySelectorAll<HTMLButtonElement>('[data-edit]')) b.disabled = readOnly
    $('#readonly-badge').hidden = !readOnly
    updateEditButtons()
  }

  // --- status --------------------------------------------------------------------------------
  let paused = false
  let everSynced = false
  const status = $('#status')
  const auth = $('#auth')
  const offlineButton = $<HTMLButtonElement>('#offline-toggle')
  const showStatus = (e?: StatusEvent): void => {
    const pending = connection.pendingOfflineEdits
    const edits = pending === 1 ? '1 local edit' : `${pending} local edits`
    let text: string
    let tone: string
    switch (connection.status) {
      case 'synced': text = 'Live'; tone = 'ok'; break
      case 'connected': text = 'Syncing…'; tone = 'busy'; break
      case 'connecting':
      case 'disconnected':
        // Retries alternate between these two; once the room was live, both mean "offline".
        if (everSynced || connection.status === 'disconnected') {
          text = pending > 0 ? `Offline · ${edits} to merge` : 'Offline · reconnecting'
          tone = 'warn'
        } else {
          text = 'Connecting…'
          tone = 'busy'
        }
        break
      default:
        if (paused) {
          text = pending > 0 ? `Offline · ${edits} to merge` : 'Offline'
          tone = 'warn'
        } else {
          text = e?.reason !== undefined && e.reason !== '' ? `Disconnected: ${e.reason}` : 'Disconnected'
          tone = 'bad'
        }
    }
    status.textContent = text
    status.dataset.tone = tone
    status.dataset.status = connection.status
    offlineButton.textContent = paused ? 'Go online' : 'Go offline'
    if (connection.authMode === 'none') {
      auth.textContent = 'no auth (dev)'
      auth.title = 'The server has no development sign-in (POST /v1/dev/token answered 404): connected without a token.'
    } else if (connection.authMode === 'token') {
      auth.textContent = `dev token · ${role()}`
      const exp = connection.tokenExpiresAt
      auth.title = `Signed in through the development flow (POST /v1/dev/token) for the rooms ${session.pattern} (this board and its branches)${exp !== null ? `; the token expires at ${new Date(exp * 1000).toLocaleTimeString()} and is renewed on reconnect` : ''}.`
    }
  }
  connection.on('status', (e) => {
    if (e.status === 'synced') everSynced = true
    showStatus(e)
    if (e.status === 'synced' && session.role !== null) setReadOnly(session.role === 'viewer' || session.role === 'commenter')
  })
  connection.on('token', () => showStatus())
  connection.doc.on('update', () => { if (connection.status !== 'synced') showStatus() })
  connection.on('offline-edits-merged', ({ count }) => {
    toast(count === 1 ? '1 offline edit merged' : `${count} offline edits merged`)
    showStatus()
  })
  connection.on('permission-denied', ({ reason }) => {
    // The server dropped our update, so the local canvas shows something no one else has: take
    // our own changes back (the undo is refused too, which is harmless) so it matches again.
    let undone = false
    while (board.undo.canUndo()) {
      board.undo.undo()
      undone = true
    }
    board.undo.clear()
    // The refused undo (and a reconnect's resync) are denied again: say it once per change.
    if (undone) toast(`The server refused your change${reason !== '' ? `: ${reason}` : ''}`, 'warn')
  })
  connection.on('token-error', ({ error }) => {
    if (error instanceof ApiError && error.status !== 0) toast(`Sign-in failed: ${error.message}`, 'warn')
  })
  offlineButton.addEventListener('click', () => {
    paused = !paused
    if (paused) connection.disconnect()
    else connection.connect()
    showStatus()
  })
  showStatus()

  // --- share link ------------------------------------------------------------------------------
  $('#copy-link').addEventListener('click', () => {
    const link = new URL(location.pathname, location.origin)
    link.searchParams.set('room', room)
    const server = new URLSearchParams(location.search).get('server')
    if (server !== null) link.searchParams.set('server', server)
    void navigator.clipboard?.writeText(link.toString()).then(() => toast('Link copied'), () => toast(link.toString()))
  })

  // --- presence list -----------------------------------------------------------------------------
  const list = $('#people')
  const count = $('#people-count')
  presence.subscribe((peers: Peer[]) => {
    count.textContent = String(peers.length + 1)
    const row = (p: { name: string, color: string, role?: string }, you: boolean, selected: number): string =>
      `<li><span class="dot" style="background:${escapeHtml(p.color)}"></span><span class="who">${escapeHtml(p.name)}${you ? ' <em>(you)</em>' : ''}</span>` +
      `<span class="meta">${selected > 0 ? `${selected} selected · ` : ''}${escapeHtml(p.role ?? '')}</span></li>`
    list.innerHTML = row({ name: me.name, color: me.color, role: role() }, true, canvas.selectedNodes.size) +
      peers.map((p) => row(p.user, false, p.selection?.length ?? 0)).join('')
  })

  // --- toolbar -----------------------------------------------------------------------------------
  // New nodes go to the free grid spot nearest the centre of the view.
  const freeSpot = (): { x: number, y: number } => {
    const c = canvas.center()
    const nodes = board.nodeList()
    const offsets: { dx: number, dy: number }[] = []
    for (let i = -4; i <= 4; i++) for (let j = -4; j <= 4; j++) offsets.push({ dx: i * (NODE_W + 56), dy: j * (NODE_H + 48) })
    offsets.sort((a, b) => Math.hypot(a.dx, a.dy * 2.5) - Math.hypot(b.dx, b.dy * 2.5))
    for (const { dx, dy } of offsets) {
      const x = c.x + dx - NODE_W / 2
      const y = c.y + dy - NODE_H / 2
      if (nodes.every((n) => Math.abs(n.x - x) > NODE_W + 24 || Math.abs(n.y - y) > NODE_H + 24)) return { x: c.x + dx, y: c.y + dy }
    }
    return c
  }
  const addNode = (kind: NodeKind): void => {
    const p = freeSpot()
    const id = board.addNode(kind, p.x, p.y)
    if (id !== '') canvas.select([id])
  }
  for (const kind of NODE_KINDS) {
    $(`[data-add="${kind}"]`).addEventListener('click', () => addNode(kind))
  }
  const linkButton = $<HTMLButtonElement>('#link')
  const renameButton = $<HTMLButtonElement>('#rename')
  const deleteButton = $<HTMLButtonElement>('#delete')
  const undoButton = $<HTMLButtonElement>('#undo')
  const redoButton = $<HTMLButtonElement>('#redo')
  function updateEditButtons (): void {
    const n = canvas.selectedNodes.size
    linkButton.disabled = board.readOnly || n !== 2
    renameButton.disabled = board.readOnly || n !== 1
    deleteButton.disabled = board.readOnly || (n === 0 && canvas.selectedEdge === null)
    undoButton.disabled = board.readOnly || board.undo.undoStack.length === 0
    redoButton.disabled = board.readOnly || board.undo.redoStack.length === 0
  }
  canvas.onSelectionChange = () => {
    updateEditButtons()
    presence.setUser({ name: me.name, color: me.color, role: role() }) // refresh own row
  }
  board.undo.on('stack-item-added', updateEditButtons)
  board.undo.on('stack-item-popped', updateEditButtons)
  board.undo.on('stack-cleared', updateEditButtons)
  board.observe(updateEditButtons)
  linkButton.addEventListener('click', () => {
    const [a, b] = [...canvas.selectedNodes]
    board.connect(a, b)
  })
  renameButton.addEventListener('click', () => canvas.rename([...canvas.selectedNodes][0]))
  deleteButton.addEventListener('click', () => canvas.deleteSelection())
  undoButton.addEventListener('click', () => board.undo.undo())
  redoButton.addEventListener('click', () => board.undo.redo())
  $('#zoom-in').addEventListener('click', () => canvas.zoom(1.2))
  $('#zoom-out').addEventListener('click', () => canvas.zoom(1 / 1.2))
  $('#zoom-fit').addEventListener('click', () => canvas.fit())
  setReadOnly(me.role === 'viewer' || me.role === 'commenter')

  // Fit the view to the content once, when the room's document first arrives.
  let fitted = false
  connection.on('status', (e) => {
    if (e.status === 'synced' && !fitted) {
      fitted = true
      canvas.fit()
    }
  })
  requestAnimationFrame(() => { if (!fitted) canvas.fit() })

  // The project's members (mentions, reviewers), named through awareness.
  const people = createPeople(session.api, () => session.project(), connection.awareness)

  // --- history -----------------------------------------------------------------------------------
  // A preview (a version, the board at an instant) is drawn read-only over the live canvas.
  const preview = new Preview($('#preview'))
  const historyToggle = $<HTMLButtonElement>('#history-toggle')
  const historyPanel = mountHistory({
    host: $('#history'),
    room,
    session,
    board,
    preview,
    role,
    roomLink: (other) => roomLink(other),
    // The live selection would still answer Delete and Enter behind the preview.
    beforePreview: () => canvas.select([]),
    liveView: () => canvas.view,
    reviews: { api: session.api.conversations, people, me: () => session.sub }
  })
  // Reviews of this board are told on its socket: the reviews shown reload at once.
  connection.on('conversation', (e) => { if (e.type === 'review.changed') historyPanel.reviewsChanged() })
  const syncToggle = (): void => {
    historyToggle.setAttribute('aria-expanded', String(historyPanel.isOpen))
    historyToggle.classList.toggle('active', historyPanel.isOpen)
  }
  historyToggle.addEventListener('click', () => { historyPanel.toggle(); syncToggle() })
  $('#history-close').addEventListener('click', syncToggle)

  // --- assets --------------------------------------------------------------------------------
  // Image nodes name an asset (`tandemx://asset/<id>@<version>`); the canvas shows it through a
  // signed link, asked once per asset and version and renewed before it expires.
  const assetApi = session.api.assets
  const links = createAssetLinks(assetApi, () => session.project())
  const resolveImage = (src: string): Promise<string> => links.resolve(src)
  canvas.resolveImage = resolveImage
  preview.resolveImage = resolveImage
  const uploads = createUploads(assetApi, () => session.project())
  mountUploadCards($('#uploads'), canvas, uploads)

  /** The pixel size of an image (a file, or a URL), or null when it is not one a browser shows. */
  const imageSize = (src: Blob | string): Promise<{ width: number, height: number } | null> => new Promise((resolve) => {
    const url = typeof src === 'string' ? src : URL.createObjectURL(src)
    const img = new Image()
    const done = (size: { width: number, height: number } | null): void => {
      if (typeof src !== 'string') URL.revokeObjectURL(url)
      resolve(size)
    }
    img.onload = () => done({ width: img.naturalWidth, height: img.naturalHeight })
    img.onerror = () => done(null)
    img.src = url
  })

  canvas.onFilesDrop = (files, at) => {
    if (board.readOnly) {
      toast(`You are signed in as a ${role()}: placing files needs an editor role`, 'warn')
      return
    }
    files.forEach((file, i) => {
      const spot = { x: at.x + i * 36, y: at.y + i * 36 }
      const size = file.type.startsWith('image/') ? imageSize(file) : Promise.resolve(null)
      uploads.start(file, spot, (asset) => {
        void size.then((dims) => {
          if (dims === null || !asset.content_type.startsWith('image/')) {
            toast(`${file.name} is in the assets library`)
          } else {
            board.addImage(assetUri(asset.id, asset.version), spot.x, spot.y, imageBox(dims.width, dims.height), file.name)
          }
        })
        if (library.isOpen) void library.refresh()
      })
    })
  }

  /** Puts an image asset of the library at the centre of the view. */
  const placeAsset = async (asset: Asset): Promise<void> => {
    const uri = assetUri(asset.id, asset.version)
    const dims = await imageSize(await links.resolve(uri))
    const c = canvas.center()
    const id = board.addImage(uri, c.x, c.y, imageBox(dims?.width ?? 0, dims?.height ?? 0), asset.name)
    if (id !== '') canvas.select([id])
  }

  const assetsToggle = $<HTMLButtonElement>('#assets-toggle')
  const library = mountLibrary({
    host: $('#assets'),
    api: assetApi,
    project: () => session.project(),
    room,
    role,
    links,
    uploads,
    place: (asset) => { placeAsset(asset).catch((err: unknown) => library.showError('Placing the image failed', err)) },
    onToggle: () => {
      assetsToggle.setAttribute('aria-expanded', String(library.isOpen))
      assetsToggle.classList.toggle('active', library.isOpen)
    }
  })
  assetsToggle.addEventListener('click', () => library.toggle())

  // --- conversations -------------------------------------------------------------------------
  const talk: Talk = {
    api: session.api.conversations,
    room,
    project: () => session.project(),
    me: () => session.sub,
    role,
    people,
    typing: createTyping(connection.awareness)
  }
  const commentsToggle = $<HTMLButtonElement>('#comments-toggle')
  const chatToggle = $<HTMLButtonElement>('#chat-toggle')
  const chatUnread = $('#chat-unread')
  const syncTalkToggles = (): void => {
    commentsToggle.setAttribute('aria-expanded', String(threadsPanel.isOpen))
    commentsToggle.classList.toggle('active', threadsPanel.isOpen)
    chatToggle.setAttribute('aria-expanded', String(chatPanel.isOpen))
    chatToggle.classList.toggle('active', chatPanel.isOpen)
    chatUnread.hidden = chatPanel.unread === 0
    chatUnread.textContent = String(chatPanel.unread)
  }
  const threadsPanel = mountThreads({
    host: $('#threads'),
    pins: $('#pins'),
    tool: $<HTMLButtonElement>('#comment-tool'),
    canvas,
    board,
    talk,
    synced: () => everSynced,
    onToggle: () => syncTalkToggles()
  })
  const chatPanel = mountChat({ host: $('#chat'), talk, onToggle: () => syncTalkToggles() })
  commentsToggle.addEventListener('click', () => threadsPanel.toggle())
  chatToggle.addEventListener('click', () => chatPanel.toggle())

  const roomLink = (other: string, params: Record<string, string> = {}): string => {
    const url = new URL(location.href)
    url.searchParams.set('room', other)
    url.searchParams.delete('thread')
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v)
    return url.toString()
  }
  /** Opens what a notification is about: a thread or the chat here, a review, or another board. */
  const openNotification = (n: Notification): void => {
    const doc = n.document ?? room
    const directBranch = doc.startsWith(`${room}${BRANCH_SEPARATOR}`) && !doc.slice(room.length + 1).includes(BRANCH_SEPARATOR)
    if (n.review !== null && (doc === room || directBranch)) {
      historyPanel.showReviews(doc)
      syncToggle()
    } else if (doc !== room) {
      // This tab keeps its user id (session.ts), so the other board's inbox and reviews are this user's.
      location.href = roomLink(doc, n.thread !== null ? { thread: String(n.thread) } : {})
    } else if (n.thread !== null) {
      threadsPanel.openThread(n.thread)
    } else {
      chatPanel.open()
    }
  }
  const inbox = mountInbox({
    button: $<HTMLButtonElement>('#inbox-toggle'),
    count: $('#inbox-count'),
    menu: $('#inbox-menu'),
    talk,
    openNotification
  })

  // The subscriptions need the token's project: they start once the sign-in answered.
  session.project().then((project) => {
    const routes = session.api.conversations
    const threads = subscribeThreads(routes, project, room, connection)
    threadsPanel.start(threads)
    chatPanel.start(subscribeChat(routes, project, room, connection))
    inbox.start(subscribeInbox(routes, project, connection, { pollMs: 15_000 }))
    people.load().catch((err: unknown) => threadsPanel.showError('Loading the members failed', err))
    // A link to a thread (?thread=<id>, as the inbox makes for another board) opens it.
    const linked = Number(new URLSearchParams(location.search).get('thread'))
    if (Number.isInteger(linked) && linked > 0) void threads.ready.then(() => threadsPanel.openThread(linked))
  }, (err: unknown) => {
    for (const p of [threadsPanel, chatPanel, inbox]) p.showError('Conversations are unavailable', err)
  })

  // --- call ------------------------------------------------------------------------------------
  const callPanel = mountCall({
    button: $<HTMLButtonElement>('#call-toggle'),
    host: $('#call'),
    server,
    room,
    session,
    me,
    presence,
    awareness: connection.awareness
  })

  roleChanged = () => {
    library.applyRole()
    historyPanel.applyRole()
    threadsPanel.applyRole()
    chatPanel.applyRole()
  }

  // A handle for scripted use and the browser tests (the canvas itself stays the real UI).
  Object.assign(window, {
    tandemx: {
      connection,
      board,
      canvas,
      presence,
      /** Adds a node centred at (x, y) and returns its id. */
      addNode: (kind: NodeKind, x: number, y: number, label?: string) => board.addNode(kind, x, y, label),
      link: (from: string, to: string) => board.connect(from, to),
      nodes: () => board.nodeList(),
      edges: () => board.edgeList(),
      /** Adds a node even when the UI is read-only (to show that the server refuses it). */
      forceAddNode: (kind: NodeKind, x: number, y: number, label?: string) => {
        const readOnly = board.readOnly
        board.readOnly = false
        try {
          return board.addNode(kind, x, y, label)
        } finally {
          board.readOnly = readOnly
        }
      },
      history: historyPanel,
      /** The asset panel, the uploads in progress, and the link cache of image nodes. */
      assets: library,
      uploads,
      links,
      /** What the server has recorded of this board's asset references. */
      boardAssets: async () => assetApi.documentAssets(await session.project(), room),
      threads: threadsPanel,
      chat: chatPanel,
      inbox,
      people,
      /** The voice/video call panel: `call.current()` is the SDK's Call while in one. */
      call: callPanel,
      /** The local user's id (the author of their comments, what a mention names). */
      me: () => session.sub,
      /** What the history preview shows, or null when the live board is shown. */
      preview: () => preview.state(),
      offline: () => { paused = true; connection.disconnect(); showStatus() },
      online: () => { paused = false; connection.connect(); showStatus() }
    }
  })
}
