// The board's voice/video call (docs/calls.md): the toolbar's Call button joins the call of this
// room through the SDK's `joinCall` with the page's room token, and a panel over the canvas shows
// a video tile for the local user and for each participant (named from presence: the
// participant whose awareness `call.peer` is theirs, else the one whose `sub` is their user id),
// outlined while they speak, with microphone, camera and leave buttons. A full call, a refusal
// or a call that ended is said in the panel.

import type { Awareness } from 'y-protocols/awareness'
import {
  CLOSE_RATE_LIMITED,
  CLOSE_REVOKED,
  CallFullError,
  joinCall,
  type Call,
  type CallParticipant,
  type CallPresence,
  type Presence
} from '../../src/index.js'
import type { Identity } from './identity.js'
import type { Session } from './session.js'
import { describeError, escapeHtml, syncList } from './ui.js'

/** What the call needs from the board page. */
export interface CallOptions {
  /** The toolbar button that joins and leaves. */
  button: HTMLButtonElement
  /** The panel (`#call` of index.html). */
  host: HTMLElement
  server: string
  room: string
  session: Session
  me: Identity
  presence: Presence
  awareness: Awareness
}

/** The call panel, for the board page and for scripts. */
export interface CallPanel {
  /** The call joined, or null. */
  current (): Call | null
  /** Joins (what the button does when not in a call); resolves when joined or refused. */
  join (): Promise<void>
  leave (): Promise<void>
  /** The message shown in the panel ('' for none). */
  message (): string
}

type State = { user?: { name?: string, color?: string }, sub?: string, call?: CallPresence | null }

/** One tile: the local user, or a participant. */
interface Tile {
  key: string
  name: string
  color: string
  stream: MediaStream | null
  local: boolean
  audio: boolean
  video: boolean
  speaking: boolean
  publish: boolean
  peer: number
}

export function mountCall (opts: CallOptions): CallPanel {
  const { button, host, room, session, me, awareness } = opts
  const $ = <T extends HTMLElement>(sel: string): T => {
    const el = host.querySelector<T>(sel)
    if (el === null) throw new Error(`missing ${sel}`)
    return el
  }
  const tiles = $('#call-tiles')
  const title = $('#call-title')
  const note = $('#call-note')
  const messageBox = $('#call-message')
  const messageText = $('#call-message-text')
  const mute = $<HTMLButtonElement>('#call-mute')
  const camera = $<HTMLButtonElement>('#call-camera')
  const leaveButton = $<HTMLButtonElement>('#call-leave')

  let call: Call | null = null
  let joining = false
  const offs: Array<() => void> = []

  const say = (text: string): void => {
    messageText.textContent = text
    messageBox.hidden = text === ''
  }

  /** A participant's name and colour from presence: by their peer id, else by their user id. */
  const whoIs = (p: CallParticipant): { name: string, color: string } => {
    let byUser: State | undefined
    for (const [id, raw] of awareness.getStates()) {
      if (id === awareness.clientID) continue
      const s = raw as State
      if (s.call?.room === room && s.call.peer === p.peer) return { name: s.user?.name ?? p.user, color: s.user?.color ?? '#6b7385' }
      if (s.sub === p.user) byUser ??= s
    }
    return { name: byUser?.user?.name ?? p.user, color: byUser?.user?.color ?? '#6b7385' }
  }

  /** How many others are in this room's call, as their presence says. */
  const inCallCount = (): number => {
    let n = 0
    for (const [id, raw] of awareness.getStates()) if (id !== awareness.clientID && (raw as State).call?.room === room) n++
    return n
  }

  const render = (): void => {
    const active = call !== null && !call.closed
    // Out of the call, the button tells how many are in it (from their presence).
    const inCall = active ? 0 : inCallCount()
    button.innerHTML = joining ? 'Joining…' : active ? 'Leave call' : `Call${inCall > 0 ? ` <span class="count-badge" data-testid="call-count">${inCall}</span>` : ''}`
    button.title = inCall > 0 ? `${inCall} in this board's call: join them` : 'Join this board\'s voice and video call'
    button.disabled = joining
    button.setAttribute('aria-pressed', String(active))
    host.hidden = !active && !joining && messageBox.hidden
    mute.hidden = camera.hidden = leaveButton.hidden = !active
    if (call === null || !active) {
      title.textContent = 'Call'
      note.hidden = true
      syncList(tiles, [], (t: Tile) => t.key, () => document.createElement('li'), () => {})
      return
    }
    const local = call.local
    const others = call.participants()
    title.textContent = `Call · ${others.length + 1} of ${call.limit}`
    mute.disabled = call.localStream?.getAudioTracks().length !== 1
    camera.disabled = call.localStream?.getVideoTracks().length !== 1
    mute.textContent = local.audio ? 'Mute' : 'Unmute'
    mute.setAttribute('aria-pressed', String(!local.audio))
    camera.textContent = local.video ? 'Camera off' : 'Camera on'
    camera.setAttribute('aria-pressed', String(!local.video))
    note.hidden = call.publish
    note.textContent = `As a ${session.role ?? me.role} you watch and listen; this project lets only editors send audio and video.`
    const list: Tile[] = [
      { key: 'local', name: `${me.name} (you)`, color: me.color, stream: call.localStream, local: true, publish: call.publish, peer: call.self, ...local },
      ...others.map((p) => ({ key: `p${p.peer}`, ...whoIs(p), stream: p.stream, local: false, audio: p.audio, video: p.video, speaking: p.speaking, publish: p.publish, peer: p.peer }))
    ]
    syncList(tiles, list, (t) => t.key, (t) => {
      const li = document.createElement('li')
      li.className = 'call-tile'
      li.dataset.testid = 'call-tile'
      li.innerHTML = '<video autoplay playsinline></video><span class="call-avatar"></span>' +
        '<span class="call-name" data-testid="call-tile-name"></span><span class="call-mic" aria-label="muted" hidden>muted</span>'
      // The local tile never plays the local microphone back.
      if (t.local) li.querySelector('video')!.muted = true
      return li
    }, (li, t) => {
      li.dataset.peer = String(t.peer)
      li.dataset.local = String(t.local)
      li.dataset.audio = String(t.audio)
      li.dataset.video = String(t.video)
      li.dataset.speaking = String(t.speaking)
      li.classList.toggle('speaking', t.speaking)
      li.style.setProperty('--who', t.color)
      const video = li.querySelector('video')!
      if (video.srcObject !== t.stream) video.srcObject = t.stream
      // Audio plays even with the camera off: only the picture is hidden.
      video.classList.toggle('off', !t.video || t.stream === null)
      const avatar = li.querySelector<HTMLElement>('.call-avatar')!
      avatar.textContent = t.name.slice(0, 1).toUpperCase()
      avatar.hidden = t.video && t.stream !== null
      li.querySelector('.call-name')!.innerHTML = `${escapeHtml(t.name)}${t.publish ? '' : ' <em>watching</em>'}`
      li.querySelector<HTMLElement>('.call-mic')!.hidden = t.audio || !t.publish
    })
  }

  const closedMessage = (code: number, reason: string): string => {
    if (code === CLOSE_REVOKED) return 'You were removed from the call: access to this board was revoked.'
    if (code === CLOSE_RATE_LIMITED) return 'The call ended: this page sent too many messages to the server.'
    return `The call ended (${code}${reason !== '' ? `: ${reason}` : ''}).`
  }

  const join = async (): Promise<void> => {
    if (joining || (call !== null && !call.closed)) return
    joining = true
    say('')
    render()
    try {
      const project = await session.project()
      call = await joinCall(room, { server: opts.server, project, getToken: session.getToken, presence: opts.presence })
      offs.push(call.on('participants', render), call.on('local', render))
      offs.push(call.on('error', (err) => {
        // A participant who left while signalling was in flight: nothing to tell.
        if (err.code !== 'no-such-peer') say(`Call: ${err.message}`)
      }))
      offs.push(call.on('closed', ({ code, reason }) => {
        for (const off of offs.splice(0)) off()
        if (reason !== 'left') say(closedMessage(code, reason))
        render()
      }))
    } catch (err) {
      call = null
      say(err instanceof CallFullError
        ? `This call is full: it has its limit of ${err.limit} participants. Try again when someone leaves.`
        : `Joining the call failed: ${describeError(err)}`)
    } finally {
      joining = false
      render()
    }
  }

  const leave = async (): Promise<void> => {
    await call?.leave()
    render()
  }

  button.addEventListener('click', () => { void (call !== null && !call.closed ? leave() : join()) })
  mute.addEventListener('click', () => { if (call !== null) call.setMuted(call.local.audio) })
  camera.addEventListener('click', () => { if (call !== null) call.setCamera(!call.local.video) })
  leaveButton.addEventListener('click', () => { void leave() })
  $('#call-message-dismiss').addEventListener('click', () => { say(''); render() })
  // Names come from presence: a participant who says theirs later gets it on their tile. (Cursor
  // moves change awareness too, often: draw again only when a name changed.)
  let names = ''
  let counted = 0
  awareness.on('change', () => {
    if (call === null || call.closed) {
      if (inCallCount() !== counted) {
        counted = inCallCount()
        render()
      }
      return
    }
    const now = call.participants().map((p) => `${p.peer}:${whoIs(p).name}`).join()
    if (now !== names) {
      names = now
      render()
    }
  })
  window.addEventListener('pagehide', () => { void call?.leave() })
  render()

  return {
    current: () => call,
    join,
    leave,
    message: () => messageText.textContent ?? ''
  }
}
