// One edge of a call's mesh: the RTCPeerConnection to one other participant, its offer/answer
// and trickled ICE candidates, and the stream of what that participant sends.
//
// Both sides end with an audio and a video transceiver. The newcomer (the offerer, docs/calls.md
// "Who offers") adds them itself: `sendrecv` with its tracks when it publishes, `recvonly`
// otherwise. The answerer cannot add its own beforehand: a remote offer reuses only transceivers
// made by `addTrack`, never ones made by `addTransceiver` (JSEP, RFC 8829 section 5.10), so it
// takes the transceivers the offer creates and gives them its tracks and direction before it
// answers.
//
// Later offers are ICE restarts: either side sends one after fresh TURN credentials, and the
// newcomer sends one when ICE failed (once: a second failure is reported). When both do at once, the newcomer's wins: it ignores the other's offer, and the
// other side rolls its own back and answers (the "perfect negotiation" roles of the WebRTC spec,
// https://w3c.github.io/webrtc-pc/#perfect-negotiation-example, the newcomer impolite).

/** What `new RTCPeerConnection(config)` is: the browser's, or a stand-in for tests. */
export type PeerConnectionConstructor = new (config?: RTCConfiguration) => RTCPeerConnection

/** What `new MediaStream(tracks)` is. */
export type MediaStreamConstructor = new (tracks?: MediaStreamTrack[]) => MediaStream

/** The `data` of a `call-signal` frame. */
export type SignalData =
  | { sdp: { type: 'offer' | 'answer', sdp: string } }
  | { candidate: RTCIceCandidateInit | null }

/** What a link needs from its call. */
export interface LinkContext {
  PeerConnection: PeerConnectionConstructor
  /** To build the remote stream; without it the stream the browser reports is used. */
  MediaStream: MediaStreamConstructor | undefined
  iceServers: RTCIceServer[]
  /** The local tracks to send, or null for a participant who receives only. */
  local: MediaStream | null
  /** Sends `data` to the other participant (a `call-signal`). */
  send: (data: SignalData) => void
  /** Whether to keep what the other participant sends (false when they may not publish). */
  accept: () => boolean
  /** The remote stream changed (a track arrived). */
  onStream: () => void
  /** ICE failed for good (a restart did not bring it back): the connection carries nothing. */
  onFailed: () => void
  /** Clock in ms, for the time between restarts after failures. */
  now: () => number
  /** How long the answerer waits for the newcomer's restart after ICE failed (default 15 s). */
  restartGraceMs?: number
  /** A failure this soon after the last restart for one is reported, not restarted (default 60 s). */
  restartBackoffMs?: number
}

/** After ICE failed, how long the answerer waits for the newcomer's restart before reporting it. */
export const RESTART_GRACE_MS = 15_000
/**
 * A failure this soon after the last restart that a failure caused is reported, not restarted
 * again: a connection that keeps failing is not restarted in a loop.
 */
export const RESTART_BACKOFF_MS = 60_000

const KINDS = ['audio', 'video'] as const

/** The peer connection to one other participant. */
export class PeerLink {
  /** The connection itself (for `getStats()`). */
  readonly pc: RTCPeerConnection
  /** What the other participant sends: their audio and video tracks, once they arrive. */
  stream: MediaStream | null = null
  private readonly queued: RTCIceCandidateInit[] = []
  private closed = false
  /** Whether this side sent the first offer (the newcomer). */
  private offerer = false
  /** An ICE restart asked for while an offer was out: sent once the answer is in. */
  private restartWanted = false
  /** Negotiation steps (offers, descriptions, candidates, restarts), one at a time, in order. */
  private chain: Promise<void> = Promise.resolve()
  /** ICE generations: counts the offers this side sent and the ones it answered. */
  private generation = 0
  /** The generation whose failure was handled (both state events tell of one failure). */
  private failedGeneration = -1
  /** ICE failed and has not connected since: a restart is (or was) tried. */
  private rescuing = false
  /** When the newcomer last restarted ICE because it failed. */
  private lastRescue: number | null = null
  private graceTimer: ReturnType<typeof setTimeout> | undefined

  constructor (readonly peer: number, private readonly ctx: LinkContext) {
    this.pc = new ctx.PeerConnection({ iceServers: ctx.iceServers })
    this.pc.onicecandidate = (ev) => {
      // End-of-candidates (null) is not sent: it is optional, and every frame counts against
      // the socket's rate limit.
      if (ev.candidate === null || this.closed) return
      const c = ev.candidate
      ctx.send({ candidate: typeof c.toJSON === 'function' ? c.toJSON() : c })
    }
    this.pc.ontrack = (ev) => { this.addTrack(ev) }
    // Both: iceConnectionState tells of ICE, connectionState also of DTLS.
    this.pc.oniceconnectionstatechange = () => { this.onState() }
    this.pc.onconnectionstatechange = () => { this.onState() }
  }

  /** As the newcomer: adds the transceivers and sends the offer. */
  async offer (): Promise<void> {
    await this.serial(async () => { await this.firstOffer() })
  }

  /** Handles the other participant's `call-signal` data. */
  async receive (data: SignalData): Promise<void> {
    await this.serial(async () => { await this.apply(data) })
  }

  /**
   * Uses `iceServers` from now on: for the candidates of the next ICE restart, and of a
   * negotiation not yet done. The connection's other settings stay as they are (changing them
   * throws, https://w3c.github.io/webrtc-pc/#dom-rtcpeerconnection-setconfiguration).
   */
  setIceServers (iceServers: RTCIceServer[]): void {
    if (this.closed) return
    this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers })
  }

  /**
   * Restarts ICE: a new offer with `iceRestart`, so both sides gather candidates anew (new TURN
   * allocations, with the credentials of `setIceServers`). Nothing before the first exchange
   * (it gathers with the current servers anyway); after the answer when an offer is out.
   */
  async restart (): Promise<void> {
    await this.serial(async () => { await this.restartNow() })
  }

  /** Closes the connection; the remote tracks end with it. */
  close (): void {
    if (this.closed) return
    this.closed = true
    this.pc.onicecandidate = null
    this.pc.ontrack = null
    this.pc.oniceconnectionstatechange = null
    this.pc.onconnectionstatechange = null
    clearTimeout(this.graceTimer)
    this.pc.close()
    this.stream = null
  }

  private serial (step: () => Promise<void>): Promise<void> {
    const run = this.chain.then(step)
    this.chain = run.catch(() => {}) // the caller hears of a failure; the next step runs anyway
    return run
  }

  private async firstOffer (): Promise<void> {
    if (this.closed) return
    this.offerer = true
    const local = this.ctx.local
    for (const kind of KINDS) {
      const track = local?.getTracks().find((t) => t.kind === kind)
      if (track !== undefined && local !== null) this.pc.addTransceiver(track, { direction: 'sendrecv', streams: [local] })
      else this.pc.addTransceiver(kind, { direction: 'recvonly' })
    }
    const offer = await this.pc.createOffer()
    await this.pc.setLocalDescription(offer)
    this.generation++
    this.sendDescription(offer)
  }

  private async restartNow (): Promise<void> {
    if (this.closed) return
    if (this.pc.signalingState !== 'stable') {
      this.restartWanted = true
      return
    }
    if (this.pc.remoteDescription === null) return
    this.restartWanted = false
    const offer = await this.pc.createOffer({ iceRestart: true })
    await this.pc.setLocalDescription(offer)
    this.generation++
    this.sendDescription(offer)
  }

  private async apply (data: SignalData): Promise<void> {
    if (this.closed) return
    if ('sdp' in data) {
      const { sdp } = data
      if (sdp.type === 'offer' && this.pc.signalingState === 'have-local-offer') {
        // Both sides offered at once: the newcomer's offer wins.
        if (this.offerer) return
        await this.pc.setLocalDescription({ type: 'rollback' })
      }
      await this.pc.setRemoteDescription(sdp)
      await this.addQueued()
      if (sdp.type === 'offer') {
        // The first offer, or a restart: the offer's transceivers (the same ones again on a
        // restart) get the local tracks, and the answer gathers anew with the current servers.
        await this.attachLocal()
        const answer = await this.pc.createAnswer()
        await this.pc.setLocalDescription(answer)
        this.generation++
        clearTimeout(this.graceTimer) // the restart we waited for: its own outcome tells
        this.sendDescription(answer)
        this.restartWanted = false // answering a restart restarts this side too
      } else if (this.restartWanted) {
        await this.restartNow()
      }
    } else if (data.candidate !== null && data.candidate !== undefined) {
      // Candidates may arrive before the description they belong to is applied: keep them.
      if (this.fits(data.candidate)) await this.pc.addIceCandidate(data.candidate)
      else this.queued.push(data.candidate)
    }
  }

  /** A state change: a failure of this ICE generation is handled once; connecting ends a rescue. */
  private onState (): void {
    if (this.closed) return
    const ice = this.pc.iceConnectionState
    const failed = ice === 'failed' || this.pc.connectionState === 'failed'
    if (!failed) {
      if (ice === 'connected' || ice === 'completed' || this.pc.connectionState === 'connected') {
        this.rescuing = false
        clearTimeout(this.graceTimer)
      }
      return
    }
    if (this.failedGeneration === this.generation) return
    this.failedGeneration = this.generation
    if (this.offerer) this.failedAsNewcomer()
    else this.failedAsAnswerer()
  }

  /** One ICE restart per failure, none within the backoff of the last; else the failure is reported. */
  private failedAsNewcomer (): void {
    const now = this.ctx.now()
    const backoff = this.ctx.restartBackoffMs ?? RESTART_BACKOFF_MS
    if (this.rescuing || (this.lastRescue !== null && now - this.lastRescue < backoff)) {
      this.ctx.onFailed()
      return
    }
    this.rescuing = true
    this.lastRescue = now
    this.restart().catch(() => { if (!this.closed) this.ctx.onFailed() })
  }

  /** The newcomer restarts (no two offers cross): wait for it, report when it fails or stays away. */
  private failedAsAnswerer (): void {
    clearTimeout(this.graceTimer)
    if (this.rescuing) {
      this.ctx.onFailed()
      return
    }
    this.rescuing = true
    this.graceTimer = setTimeout(() => { if (!this.closed && this.rescuing) this.ctx.onFailed() }, this.ctx.restartGraceMs ?? RESTART_GRACE_MS)
  }

  /**
   * Whether a candidate belongs to the remote description now applied. One of a description
   * still on its way (a restart's new username fragment) must wait for it: a browser refuses a
   * candidate whose `usernameFragment` the remote description does not have
   * (https://w3c.github.io/webrtc-pc/#dom-peerconnection-addicecandidate).
   */
  private fits (c: RTCIceCandidateInit): boolean {
    const remote = this.pc.remoteDescription
    if (remote === null) return false
    const ufrag = c.usernameFragment
    if (ufrag === null || ufrag === undefined) return true
    const lines = remote.sdp.split(/\r?\n/)
    return !lines.some((l) => l.startsWith('a=ice-ufrag:')) || lines.includes(`a=ice-ufrag:${ufrag}`)
  }

  /** After a remote description: the queued candidates that belong to it; the rest are stale. */
  private async addQueued (): Promise<void> {
    for (const c of this.queued.splice(0)) if (this.fits(c)) await this.pc.addIceCandidate(c)
  }

  /** As the answerer: the offer's transceivers get the local tracks (or receive only). */
  private async attachLocal (): Promise<void> {
    const local = this.ctx.local
    const used = new Set<MediaStreamTrack>()
    for (const t of this.pc.getTransceivers()) {
      if (t.currentDirection === 'stopped') continue
      const kind = t.receiver.track?.kind
      const track = local?.getTracks().find((x) => x.kind === kind && !used.has(x))
      if (track !== undefined && local !== null) {
        used.add(track)
        t.direction = 'sendrecv'
        await t.sender.replaceTrack(track)
        // The offerer's side then reports the tracks in one stream, as ours are.
        t.sender.setStreams?.(local)
      } else {
        t.direction = 'recvonly'
      }
    }
  }

  private sendDescription (d: RTCSessionDescriptionInit): void {
    const sdp = this.pc.localDescription?.sdp ?? d.sdp ?? ''
    this.ctx.send({ sdp: { type: d.type as 'offer' | 'answer', sdp } })
  }

  private addTrack (ev: RTCTrackEvent): void {
    // A participant who may not publish has nothing to show; whatever arrives is dropped.
    if (this.closed || !this.ctx.accept()) return
    const track = ev.track
    const Stream = this.ctx.MediaStream
    if (Stream === undefined) {
      this.stream = ev.streams[0] ?? this.stream
    } else {
      // One stream per participant, whatever stream ids their offer named; kept as one object,
      // so a <video> showing it picks up a track that arrives later.
      this.stream ??= new Stream()
      for (const old of this.stream.getTracks()) if (old.kind === track.kind && old !== track) this.stream.removeTrack(old)
      if (!this.stream.getTracks().includes(track)) this.stream.addTrack(track)
    }
    this.ctx.onStream()
  }
}
