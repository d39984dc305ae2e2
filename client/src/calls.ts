// joinCall(): a voice/video call beside a room (docs/calls.md). The browsers form a mesh of
// RTCPeerConnections; TandemX's /signal socket carries the signalling (call-* frames), decides
// who may publish media, and enforces the participant limit. Media never reaches the server.

import type { Role } from './api.js'
import { CLOSE_TOKEN_EXPIRED, normalizeToken, type GetToken, type TokenReason } from './connect.js'
import { Emitter } from './emitter.js'
import { PeerLink, type MediaStreamConstructor, type PeerConnectionConstructor } from './call-link.js'
import { IceRefresh, type Ice } from './call-ice.js'
import { CallError, PING, errorOf, fetchIceServers, iceSchedule, signalUrl, type Frame, type WireParticipant } from './call-protocol.js'
import type { Presence } from './presence.js'
import { SpeakingDetector, audioLevels, type SpeakingOptions } from './speaking.js'
import type { WebSocketConstructor } from './token-socket.js'

export type { MediaStreamConstructor, PeerConnectionConstructor, SignalData } from './call-link.js'
export { CallError, CallFullError, CLOSE_RATE_LIMITED, CLOSE_REVOKED, fetchIceServers, iceSchedule, signalUrl, type IceSchedule, type IceServerList } from './call-protocol.js'

/** Another participant of the call (never the local one). */
export interface CallParticipant {
  /** The hub's id of their connection. */
  peer: number
  /** Their user id (the token's `sub`). */
  user: string
  role: Role
  /** Whether they may send media; the SDK drops whatever arrives from one who may not. */
  publish: boolean
  /** Microphone on. */
  audio: boolean
  /** Camera on. */
  video: boolean
  /** From the level of the audio received from them. */
  speaking: boolean
  /** Their audio and video tracks, once they arrive; null for one who does not publish. */
  stream: MediaStream | null
}

/** What `joinCall` writes into the awareness field `call` of the room's presence. */
export interface CallPresence {
  room: string
  peer: number
  audio: boolean
  video: boolean
  speaking: boolean
}

/** The local participant's media state. */
export interface LocalCallState {
  audio: boolean
  video: boolean
  speaking: boolean
}

/** Why a call ended: the socket's close code and reason (1000 `left` after `leave()`). */
export interface CallClosed {
  code: number
  reason: string
}

/** Events of a call. */
export interface CallEvents extends Record<string, unknown> {
  /** Someone joined, left, muted, started or stopped speaking, or their stream changed. */
  participants: CallParticipant[]
  /** The local microphone, camera or speaking state changed. */
  local: LocalCallState
  /** A refused frame, or a connection to a participant that failed; the call goes on. */
  error: CallError
  /** The call ended: left, the socket closed (4403 revoked, 4429 rate limited, …). */
  closed: CallClosed
}

/** Options of `joinCall`. */
export interface JoinCallOptions {
  /** The TandemX server: `https://host`, `http://127.0.0.1:8787`, or `ws(s)://host`. */
  server: string
  /** The project of the room (for the ICE servers). */
  project: string
  /**
   * Room tokens, as for `connect`: asked with reason `initial`, `expired` after a 4401, and
   * `refresh` for fresh TURN credentials before the ones in use expire.
   */
  getToken: GetToken
  /** Send the microphone (default true; only when the token's role may publish). */
  audio?: boolean
  /** Send the camera (default true; only when the token's role may publish). */
  video?: boolean
  /** The room's presence: the call state is mirrored into its awareness field `call`. */
  presence?: Pick<Presence<unknown, unknown>, 'setField'>
  /** ICE servers to use instead of `GET /v1/projects/{project}/ice-servers` (never refreshed). */
  iceServers?: RTCIceServer[]
  /** Longest wait for the hub's `call-joined`, in ms (default 15000). */
  timeoutMs?: number
  /** Keep-alive interval in ms (default 15000). */
  keepAliveMs?: number
  /** How often audio levels are read for `speaking`, in ms (default 250). */
  speakingPollMs?: number
  /** Thresholds of the speaking detection. */
  speaking?: SpeakingOptions
  /** Stand-ins for tests and other runtimes; the browser's by default. */
  WebSocket?: WebSocketConstructor
  RTCPeerConnection?: PeerConnectionConstructor
  MediaStream?: MediaStreamConstructor
  getUserMedia?: (constraints: MediaStreamConstraints) => Promise<MediaStream>
  fetch?: typeof fetch
  /** Clock in unix ms, for the speaking hold time and when TURN credentials are refreshed. */
  now?: () => number
}

/** A call joined with `joinCall`. */
export interface Call {
  readonly room: string
  /** The hub's id of the local connection (new after a rejoin). */
  readonly self: number
  /** Whether the local participant may send media (the token's role, the project's settings). */
  readonly publish: boolean
  /** The call's participant limit. */
  readonly limit: number
  /** The local microphone and camera, or null for a participant who does not publish. */
  readonly localStream: MediaStream | null
  /** Microphone, camera and speaking state of the local participant. */
  readonly local: LocalCallState
  /** Whether the call has ended. */
  readonly closed: boolean
  /** Everyone else in the call, ordered by peer id. */
  participants(): CallParticipant[]
  /** The peer connection to a participant (for `getStats()`), or null. */
  connection(peer: number): RTCPeerConnection | null
  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof CallEvents>(event: K, fn: (payload: CallEvents[K]) => void): () => void
  /** Mutes or unmutes the microphone (the track's `enabled`; no renegotiation) and tells the others. */
  setMuted(muted: boolean): void
  /** Turns the camera off or on, likewise. */
  setCamera(on: boolean): void
  /** Leaves: `call-leave`, then closes the connections and the socket, stops the tracks, clears presence. */
  leave(): Promise<void>
}

/**
 * Joins the call of `room`: resolves once the hub answered `call-joined` and offers went to
 * everyone already there; rejects with `CallFullError` when the call is full and `CallError`
 * for any other refusal.
 */
export async function joinCall (room: string, options: JoinCallOptions): Promise<Call> {
  const session = new CallSession(room, options)
  return await session.start()
}

interface Member { info: WireParticipant, link: PeerLink, speaking: SpeakingDetector }

type Phase = 'joining' | 'joined' | 'rejoining' | 'leaving' | 'closed'

class CallSession implements Call {
  self = 0
  publish = false
  limit = 0
  localStream: MediaStream | null = null
  private phase: Phase = 'joining'
  private readonly events = new Emitter<CallEvents>()
  private readonly members = new Map<number, Member>()
  private ws: WebSocket | null = null
  private iceServers: Promise<Ice> | null = null
  private resolvedIce: RTCIceServer[] = []
  private readonly iceRefresh: IceRefresh
  private presenceShown = false
  private inbox: Promise<void> = Promise.resolve()
  private attempt = 0
  private timers: Array<ReturnType<typeof setInterval>> = []
  private joinTimer: ReturnType<typeof setTimeout> | undefined
  private settle: { resolve: (call: Call) => void, reject: (err: unknown) => void } | null = null
  private leftWaiter: (() => void) | null = null
  private readonly localSpeaking: SpeakingDetector
  private speakingNow = false
  private polling = false
  private readonly WS: WebSocketConstructor
  private readonly PC: PeerConnectionConstructor
  private readonly now: () => number

  constructor (readonly room: string, private readonly options: JoinCallOptions) {
    const WS = options.WebSocket ?? (globalThis.WebSocket as unknown as WebSocketConstructor | undefined)
    const PC = options.RTCPeerConnection ?? (globalThis.RTCPeerConnection as PeerConnectionConstructor | undefined)
    if (WS === undefined) throw new Error('no WebSocket: pass options.WebSocket')
    if (PC === undefined) throw new Error('no RTCPeerConnection: pass options.RTCPeerConnection')
    this.WS = WS
    this.PC = PC
    this.now = options.now ?? (() => Date.now())
    this.localSpeaking = new SpeakingDetector(options.speaking)
    this.iceRefresh = new IceRefresh({
      fetch: async (live) => {
        const token = await this.token('refresh')
        return live() && this.phase === 'joined' ? await this.fetchIce(token) : null
      },
      now: this.now,
      fresh: (servers) => { if (this.phase === 'joined') this.useIce(servers) },
      failed: (err) => { if (this.phase === 'joined') this.events.emit('error', err) }
    })
  }

  get closed (): boolean { return this.phase === 'closed' }

  get local (): LocalCallState {
    return { audio: this.trackOn('audio'), video: this.trackOn('video'), speaking: this.speakingNow }
  }

  start (): Promise<Call> {
    return new Promise<Call>((resolve, reject) => {
      this.settle = { resolve, reject }
      void this.open('initial')
    })
  }

  participants (): CallParticipant[] {
    return [...this.members.values()].sort((a, b) => a.info.peer - b.info.peer).map((m) => ({
      ...m.info,
      speaking: m.speaking.speaking,
      stream: m.info.publish ? m.link.stream : null
    }))
  }

  connection (peer: number): RTCPeerConnection | null {
    return this.members.get(peer)?.link.pc ?? null
  }

  on<K extends keyof CallEvents> (event: K, fn: (payload: CallEvents[K]) => void): () => void {
    return this.events.on(event, fn)
  }

  setMuted (muted: boolean): void {
    this.setEnabled('audio', !muted)
  }

  setCamera (on: boolean): void {
    this.setEnabled('video', on)
  }

  async leave (): Promise<void> {
    if (this.phase === 'closed' || this.phase === 'leaving') return
    const wasJoined = this.phase === 'joined'
    this.phase = 'leaving'
    if (wasJoined && this.ws?.readyState === this.WS.OPEN) {
      // Wait for `call-left` (or the socket's end) so the others hear of it before we go.
      const left = new Promise<void>((resolve) => { this.leftWaiter = resolve })
      this.send({ type: 'call-leave', room: this.room })
      await Promise.race([left, new Promise((resolve) => setTimeout(resolve, 1000))])
    }
    this.end({ code: 1000, reason: 'left' })
  }

  // --- the socket ---------------------------------------------------------------------------

  /** Gets a token, opens the socket and sends `call-join`. */
  private async open (reason: TokenReason): Promise<void> {
    this.attempt++
    let token: string | null
    try {
      token = await this.token(reason)
    } catch (err) {
      this.failJoin(err as CallError)
      return
    }
    if (this.phase === 'closed' || this.phase === 'leaving') return
    if (this.iceServers === null) {
      const given = this.options.iceServers
      this.iceServers = given !== undefined ? Promise.resolve({ servers: given, schedule: null }) : this.fetchIce(token)
      this.iceServers.catch(() => {}) // awaited on call-joined; not an unhandled rejection before
    }
    const url = new URL(signalUrl(this.options.server))
    if (token !== null) url.searchParams.set('token', token)
    const ws = new this.WS(url.toString())
    this.ws = ws
    this.joinTimer = setTimeout(() => {
      this.failJoin(new CallError('timeout', `no call-joined within ${this.options.timeoutMs ?? 15_000} ms`))
    }, this.options.timeoutMs ?? 15_000)
    ws.onerror = () => {} // a close event follows, with the code
    ws.onopen = () => {
      // A rejoin says what the tracks are now (muted or not); a first join what is asked for.
      const has = this.localStream !== null
      this.send({ type: 'call-join', room: this.room, audio: has ? this.trackOn('audio') : this.wants('audio'), video: has ? this.trackOn('video') : this.wants('video') })
      const ping = setInterval(() => { if (ws.readyState === this.WS.OPEN) ws.send(PING) }, this.options.keepAliveMs ?? 15_000)
      this.timers.push(ping)
    }
    ws.onmessage = (ev: MessageEvent) => {
      if (ws !== this.ws || typeof ev.data !== 'string') return
      let frame: Frame
      try {
        frame = JSON.parse(ev.data) as Frame
      } catch {
        return
      }
      if (frame === null || typeof frame !== 'object' || frame.type === 'pong') return
      // One frame at a time, in order: a handler may wait for media or a description.
      this.inbox = this.inbox.then(() => this.handle(frame)).catch((err: unknown) => {
        const error = err instanceof CallError ? err : new CallError('internal', err instanceof Error ? err.message : String(err), { cause: err })
        if (this.phase === 'joining' || this.phase === 'rejoining') this.failJoin(error)
        else if (this.phase === 'joined') this.events.emit('error', error)
      })
    }
    ws.onclose = (ev: CloseEvent) => {
      if (ws !== this.ws) return
      this.ws = null
      this.onClose(ev.code, ev.reason)
    }
  }

  /** A token from `getToken` (null for none); a `CallError` with code `token` when it threw. */
  private async token (reason: TokenReason): Promise<string | null> {
    try {
      const { token } = normalizeToken(await this.options.getToken({ room: this.room, reason, attempt: this.attempt }))
      return token === '' ? null : token
    } catch (err) {
      throw new CallError('token', `token unavailable: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
    }
  }

  /** The project's ICE servers, and when to fetch them again (only a list with TURN credentials). */
  private async fetchIce (token: string | null): Promise<Ice> {
    const list = await fetchIceServers(this.options.server, this.options.project, token, this.options.fetch)
    // A plain list for RTCPeerConnection; the schedule on this side's clock.
    return { servers: [...list], schedule: iceSchedule(list, this.now()) }
  }

  private onClose (code: number, reason: string): void {
    if (this.phase === 'closed') return
    if (this.phase === 'leaving') {
      this.leftWaiter?.()
      return
    }
    if (this.phase === 'joining' || this.phase === 'rejoining') {
      this.failJoin(new CallError('closed', `the signalling socket closed before the call was joined (${code}${reason !== '' ? ` ${reason}` : ''})`, { closeCode: code }), { code, reason })
      return
    }
    if (code === CLOSE_TOKEN_EXPIRED) {
      // The token expired: the hub dropped this connection from the call, and the others
      // closed their side. Join again with a fresh token, as a newcomer with a new peer id.
      this.phase = 'rejoining'
      this.dropMembers()
      this.clearTimers()
      if (this.options.iceServers === undefined) this.iceServers = null // TURN credentials anew
      this.events.emit('participants', [])
      void this.open('expired')
      return
    }
    this.end({ code, reason })
  }

  private send (frame: Record<string, unknown>): void {
    if (this.ws !== null && this.ws.readyState === this.WS.OPEN) this.ws.send(JSON.stringify(frame))
  }

  // --- frames -------------------------------------------------------------------------------

  private async handle (f: Frame): Promise<void> {
    if (this.phase === 'closed') return
    if (f.room !== undefined && f.room !== this.room) return
    if (this.phase === 'leaving') {
      if (f.type === 'call-left') this.leftWaiter?.()
      return
    }
    switch (f.type) {
      case 'error': {
        const error = errorOf(f)
        if (this.phase === 'joined') this.events.emit('error', error)
        else this.failJoin(error)
        return
      }
      case 'call-joined': return await this.joined(f)
      case 'call-peer-joined':
        if (this.phase === 'joined' && f.participant !== undefined) {
          // They will offer; our side of the connection waits for it.
          this.addMember(f.participant)
          this.emitParticipants()
        }
        return
      case 'call-peer-state': {
        const m = f.peer !== undefined ? this.members.get(f.peer) : undefined
        if (m === undefined) return
        m.info = { ...m.info, audio: f.audio === true, video: f.video === true }
        if (!m.info.audio) m.speaking.reset()
        this.emitParticipants()
        return
      }
      case 'call-peer-left': {
        const m = f.peer !== undefined ? this.members.get(f.peer) : undefined
        if (m === undefined) return
        m.link.close()
        this.members.delete(m.info.peer)
        this.emitParticipants()
        return
      }
      case 'call-signal': {
        const m = f.from !== undefined ? this.members.get(f.from) : undefined
        if (m === undefined || f.data === undefined) return
        try {
          await m.link.receive(f.data)
        } catch (err) {
          throw new CallError('negotiation-failed', `signalling with participant ${m.info.peer} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err, peer: m.info.peer })
        }
        return
      }
      default:
        // Other frames (y-webrtc's, a newer hub's) are not the call's business.
    }
  }

  /** `call-joined`: media (first time only), ICE servers, then an offer to everyone there. */
  private async joined (f: Frame): Promise<void> {
    if (this.phase !== 'joining' && this.phase !== 'rejoining') return
    const first = this.phase === 'joining'
    clearTimeout(this.joinTimer)
    this.self = f.self ?? 0
    this.publish = f.publish === true
    this.limit = f.limit ?? 0
    if (first && this.publish && (this.wants('audio') || this.wants('video'))) {
      const getUserMedia = this.options.getUserMedia ?? ((c: MediaStreamConstraints) => navigator.mediaDevices.getUserMedia(c))
      try {
        this.localStream = await getUserMedia({ audio: this.wants('audio'), video: this.wants('video') })
      } catch (err) {
        throw new CallError('media', `no microphone or camera: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
      }
      if (this.phase !== 'joining') {
        // The call ended while the browser asked for the devices.
        for (const t of this.localStream.getTracks()) t.stop()
        return
      }
    }
    // The hub recorded what call-join asked for; tell it what the devices gave.
    if (this.publish && (f.audio !== this.trackOn('audio') || f.video !== this.trackOn('video'))) this.sendState()
    let ice: Ice
    try {
      ice = await (this.iceServers ?? Promise.resolve({ servers: [], schedule: null }))
    } catch (err) {
      throw new CallError('ice-servers', `fetching the ICE servers failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
    }
    this.resolvedIce = ice.servers
    this.phase = 'joined'
    this.iceRefresh.schedule(ice.schedule)
    for (const p of f.participants ?? []) await this.addMember(p).offer()
    this.showPresence()
    if (first) {
      this.settle?.resolve(this)
      this.settle = null
    }
    this.startPolling()
    this.emitParticipants()
  }

  private addMember (info: WireParticipant): PeerLink {
    this.members.get(info.peer)?.link.close()
    const link = new PeerLink(info.peer, {
      PeerConnection: this.PC,
      MediaStream: this.options.MediaStream ?? (globalThis.MediaStream as MediaStreamConstructor | undefined),
      iceServers: this.resolvedIce,
      local: this.publish ? this.localStream : null,
      send: (data) => { this.send({ type: 'call-signal', room: this.room, to: info.peer, data }) },
      accept: () => this.members.get(info.peer)?.info.publish === true,
      onStream: () => { this.emitParticipants() },
      onFailed: () => {
        this.events.emit('error', new CallError('connection-failed', `the connection to participant ${info.peer} failed`, { peer: info.peer }))
      },
      now: this.now
    })
    this.members.set(info.peer, { info: { ...info }, link, speaking: new SpeakingDetector(this.options.speaking) })
    return link
  }

  /** Fresh ICE servers: every connection takes them and restarts ICE (see call-ice.ts). */
  private useIce (servers: RTCIceServer[]): void {
    this.resolvedIce = servers
    for (const m of this.members.values()) {
      const peer = m.info.peer
      const failed = (err: unknown): void => {
        if (this.phase === 'joined') this.events.emit('error', new CallError('negotiation-failed', `restarting ICE with participant ${peer} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err, peer }))
      }
      try {
        m.link.setIceServers(servers)
      } catch (err) {
        failed(err)
        continue
      }
      m.link.restart().catch(failed)
    }
  }

  /** A refusal before the call was (re)joined: the first join rejects, a rejoin ends the call. */
  private failJoin (error: CallError, closed: CallClosed = { code: 1000, reason: error.code }): void {
    if (this.phase !== 'joining' && this.phase !== 'rejoining') return
    if (this.settle !== null) {
      this.settle.reject(error)
      this.settle = null
      this.end(closed, false)
    } else {
      this.events.emit('error', error)
      this.end(closed)
    }
  }

  // --- local media, presence, speaking ----------------------------------------------------------

  private wants (kind: 'audio' | 'video'): boolean {
    return this.options[kind] !== false
  }

  private track (kind: 'audio' | 'video'): MediaStreamTrack | undefined {
    return this.localStream?.getTracks().find((t) => t.kind === kind)
  }

  private trackOn (kind: 'audio' | 'video'): boolean {
    return this.publish && this.track(kind)?.enabled === true
  }

  private setEnabled (kind: 'audio' | 'video', on: boolean): void {
    const track = this.track(kind)
    if (track === undefined || !this.publish || this.phase === 'closed' || track.enabled === on) return
    track.enabled = on
    if (kind === 'audio' && !on) {
      this.localSpeaking.reset()
      this.speakingNow = false
    }
    this.sendState()
    this.showPresence()
    this.events.emit('local', this.local)
  }

  private sendState (): void {
    this.send({ type: 'call-state', room: this.room, audio: this.trackOn('audio'), video: this.trackOn('video') })
  }

  private showPresence (): void {
    const { audio, video, speaking } = this.local
    const state: CallPresence = { room: this.room, peer: this.self, audio, video, speaking }
    this.options.presence?.setField('call', state)
    this.presenceShown = this.options.presence !== undefined
  }

  private startPolling (): void {
    const every = this.options.speakingPollMs ?? 250
    this.timers.push(setInterval(() => { void this.poll() }, every))
  }

  /** Reads every connection's audio levels: the local microphone's and each participant's. */
  private async poll (): Promise<void> {
    if (this.polling || this.phase !== 'joined') return
    this.polling = true
    try {
      let source = 0
      let changed = false
      for (const m of [...this.members.values()]) {
        const levels = audioLevels(await m.link.pc.getStats())
        source = Math.max(source, levels.source ?? 0)
        const was = m.speaking.speaking
        if (m.info.publish && m.info.audio) m.speaking.update(levels.inbound ?? 0, this.now())
        else m.speaking.reset()
        if (m.speaking.speaking !== was) changed = true
      }
      if (this.phase !== 'joined') return
      if (changed) this.emitParticipants()
      // The microphone's level is what the connections report of it, so it is known only
      // while someone else is in the call (and then it is all anyone needs).
      const speaking = this.trackOn('audio') && this.members.size > 0 && this.localSpeaking.update(source, this.now())
      if (speaking !== this.speakingNow) {
        this.speakingNow = speaking
        this.showPresence()
        this.events.emit('local', this.local)
      }
    } catch {
      // A connection closed while its stats were read: the next poll reads the others.
    } finally {
      this.polling = false
    }
  }

  private emitParticipants (): void {
    if (this.phase === 'joined') this.events.emit('participants', this.participants())
  }

  // --- the end ---------------------------------------------------------------------------------

  private dropMembers (): void {
    for (const m of this.members.values()) m.link.close()
    this.members.clear()
  }

  private clearTimers (): void {
    for (const t of this.timers.splice(0)) clearInterval(t)
    clearTimeout(this.joinTimer)
    this.iceRefresh.stop()
  }

  /** Ends the call: connections, socket, tracks, presence; then `closed` (when announced). */
  private end (closed: CallClosed, announce = true): void {
    if (this.phase === 'closed') return
    this.phase = 'closed'
    this.clearTimers()
    this.dropMembers()
    const ws = this.ws
    this.ws = null
    if (ws !== null && (ws.readyState === this.WS.OPEN || ws.readyState === this.WS.CONNECTING)) ws.close(1000, 'left')
    for (const t of this.localStream?.getTracks() ?? []) t.stop()
    if (this.presenceShown) this.options.presence?.setField('call', null)
    this.presenceShown = false
    this.speakingNow = false
    if (announce) this.events.emit('closed', closed)
  }
}
