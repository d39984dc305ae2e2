// Stand-ins for RTCPeerConnection, MediaStream and getUserMedia, enough for the call SDK to run
// a mesh in Node: offers and answers are real SDP text (one m= section per transceiver with its
// direction, answers intersecting directions as JSEP does), so the fake hub's media check reads
// them; a remote description whose section sends fires `track`; a remote offer creates the
// transceivers the answerer then fills. Two SDK clients in one process talk through them.
//
// ICE as far as the SDK sees it: each description has an `a=ice-ufrag`, new on an offer with
// `iceRestart` (and on the answer to one); a candidate carries its description's ufrag and is
// refused, as browsers do, by a connection whose remote description has another; the signalling
// state follows JSEP (with rollback); `setConfiguration` and `getConfiguration` keep the config;
// a connection connects when its answer is applied, and `fail()` drives the ICE state to failed.

let trackIds = 0

export class FakeTrack {
  constructor (kind) {
    this.kind = kind
    this.id = `${kind}-${++trackIds}`
    this.enabled = true
    this.readyState = 'live'
  }

  stop () { this.readyState = 'ended' }
}

export class FakeMediaStream {
  constructor (tracks = []) { this.tracks = [...tracks] }
  getTracks () { return [...this.tracks] }
  getAudioTracks () { return this.tracks.filter((t) => t.kind === 'audio') }
  getVideoTracks () { return this.tracks.filter((t) => t.kind === 'video') }
  addTrack (t) { if (!this.tracks.includes(t)) this.tracks.push(t) }
  removeTrack (t) { this.tracks = this.tracks.filter((x) => x !== t) }
}

const sends = (d) => d === 'sendrecv' || d === 'sendonly'
const receives = (d) => d === 'sendrecv' || d === 'recvonly'
/** The answer's direction for a section the offer declared `offered`, the answerer wanting `wanted`. */
function answerDirection (offered, wanted) {
  const send = sends(wanted) && receives(offered)
  const recv = receives(wanted) && sends(offered)
  return send && recv ? 'sendrecv' : send ? 'sendonly' : recv ? 'recvonly' : 'inactive'
}

const ufragOf = (sdp) => /a=ice-ufrag:(\S+)/.exec(sdp)?.[1] ?? null
let ufrags = 0

function parseSdp (sdp) {
  return sdp.split('\r\n').filter((l) => l.startsWith('m=')).map((l, i) => {
    const section = sdp.split('\r\nm=')[i + 1]
    return { kind: l.slice(2).split(' ')[0], direction: /a=(sendrecv|sendonly|recvonly|inactive)/.exec(section)[1] }
  })
}

/**
 * A world of fake peer connections. `forceSendrecv` makes every offer and answer claim
 * sendrecv (a browser that ignores the SDK's recvonly); `stats(pc)` answers getStats();
 * `iceWorks = false` makes the next connections fail where they would connect.
 */
export function createFakeRtc () {
  const world = {
    /** Every peer connection made, in order. */
    connections: [],
    /** Every getUserMedia call's constraints. */
    mediaRequests: [],
    forceSendrecv: false,
    iceWorks: true,
    /** pc -> Map of stats, for getStats(). */
    stats: (_pc) => new Map(),
    MediaStream: FakeMediaStream,
    async getUserMedia (constraints) {
      world.mediaRequests.push(constraints)
      const tracks = []
      if (constraints.audio) tracks.push(new FakeTrack('audio'))
      if (constraints.video) tracks.push(new FakeTrack('video'))
      return new FakeMediaStream(tracks)
    },
    RTCPeerConnection: null
  }

  class FakePeerConnection {
    constructor (config) {
      this.config = config
      this.initialConfig = config
      /** Every setConfiguration() argument, in order. */
      this.configurations = []
      this.transceivers = []
      this.localDescription = null
      this.remoteDescription = null
      /** The local description before an offer, for a rollback. */
      this.stableLocal = null
      /** Every createOffer() argument, in order. */
      this.offerOptions = []
      this.candidates = []
      this.signalingState = 'stable'
      this.connectionState = 'new'
      this.iceConnectionState = 'new'
      this.closed = false
      this.onicecandidate = null
      this.ontrack = null
      this.onconnectionstatechange = null
      this.oniceconnectionstatechange = null
      world.connections.push(this)
    }

    getConfiguration () { return { ...this.config, bundlePolicy: 'max-bundle' } }

    setConfiguration (config) {
      if (this.closed) throw new Error('InvalidStateError: closed')
      if (config.bundlePolicy !== 'max-bundle') throw new Error('InvalidModificationError: bundlePolicy')
      this.configurations.push(config)
      const { bundlePolicy, ...rest } = config
      this.config = rest
    }

    addTransceiver (trackOrKind, init = {}) {
      const track = typeof trackOrKind === 'string' ? null : trackOrKind
      const kind = track === null ? trackOrKind : track.kind
      const t = this.transceiver(kind, init.direction ?? 'sendrecv')
      t.sender.track = track
      return t
    }

    transceiver (kind, direction) {
      const t = {
        direction,
        currentDirection: null,
        mid: null,
        sender: { track: null, async replaceTrack (x) { this.track = x }, setStreams () {} },
        receiver: { track: new FakeTrack(kind) }
      }
      this.transceivers.push(t)
      return t
    }

    getTransceivers () { return [...this.transceivers] }

    sdp (directions, ufrag) {
      return `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-ufrag:${ufrag}\r\n` + this.transceivers.map((t, i) =>
        `m=${t.receiver.track.kind} 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:${i}\r\na=${world.forceSendrecv ? 'sendrecv' : directions[i]}\r\n`).join('')
    }

    /** The local ufrag: the current one, or a new one for an ICE restart (or a first description). */
    ufrag (restart) {
      const current = ufragOf(this.localDescription?.sdp ?? '')
      return restart || current === null ? `u${++ufrags}` : current
    }

    async createOffer (options) {
      if (this.closed) throw new Error('closed')
      this.offerOptions.push(options)
      return { type: 'offer', sdp: this.sdp(this.transceivers.map((t) => t.direction), this.ufrag(options?.iceRestart === true)) }
    }

    async createAnswer () {
      if (this.signalingState !== 'have-remote-offer') throw new Error('InvalidStateError: no remote offer')
      const offered = parseSdp(this.remoteDescription.sdp)
      // A restart offer (a new remote ufrag) restarts this side too.
      const restart = ufragOf(this.remoteDescription.sdp) !== this.answeredUfrag
      return { type: 'answer', sdp: this.sdp(this.transceivers.map((t, i) => answerDirection(offered[i].direction, t.direction)), this.ufrag(restart)) }
    }

    async setLocalDescription (d) {
      if (this.closed) throw new Error('closed')
      if (d.type === 'rollback') {
        if (this.signalingState !== 'have-local-offer') throw new Error('InvalidStateError: nothing to roll back')
        this.localDescription = this.stableLocal
        this.signalingState = 'stable'
        return
      }
      if (d.type === 'offer') {
        if (this.signalingState !== 'stable') throw new Error('InvalidStateError: offer in ' + this.signalingState)
        this.stableLocal = this.localDescription
        this.signalingState = 'have-local-offer'
      } else {
        if (this.signalingState !== 'have-remote-offer') throw new Error('InvalidStateError: answer in ' + this.signalingState)
        this.signalingState = 'stable'
        this.answeredUfrag = ufragOf(this.remoteDescription.sdp)
      }
      const restarted = this.localDescription !== null && ufragOf(d.sdp) !== ufragOf(this.localDescription.sdp)
      this.localDescription = d
      if (restarted && this.iceConnectionState === 'failed') this.setIce('checking', 'connecting')
      // A candidate before the description has left: the other side must queue it.
      const candidate = { candidate: `candidate:1 1 udp 2122260223 127.0.0.1 ${9000 + world.connections.indexOf(this)} typ host`, sdpMid: '0', sdpMLineIndex: 0, usernameFragment: ufragOf(d.sdp) }
      this.onicecandidate?.({ candidate: { ...candidate, toJSON: () => candidate } })
      setTimeout(() => this.onicecandidate?.({ candidate: null }), 0)
      if (d.type === 'answer') this.settle()
    }

    async setRemoteDescription (d) {
      if (this.closed) throw new Error('closed')
      if (d.type === 'offer' && this.signalingState !== 'stable') throw new Error('InvalidStateError: offer in ' + this.signalingState)
      if (d.type === 'answer' && this.signalingState !== 'have-local-offer') throw new Error('InvalidStateError: answer in ' + this.signalingState)
      this.remoteDescription = d
      this.signalingState = d.type === 'offer' ? 'have-remote-offer' : 'stable'
      const sections = parseSdp(d.sdp)
      sections.forEach((s, i) => {
        if (d.type === 'offer' && this.transceivers[i] === undefined) this.transceiver(s.kind, 'recvonly')
        const t = this.transceivers[i]
        t.mid = String(i)
        // As in browsers, a track event per transceiver that starts receiving, not per description.
        if (sends(s.direction) && !t.receiving) {
          t.receiving = true
          this.ontrack?.({ track: t.receiver.track, streams: [], transceiver: t })
        }
      })
      if (d.type === 'answer') this.settle()
    }

    /** An exchange is complete: ICE connects (or fails, with `world.iceWorks` false), soon. */
    settle () {
      const works = world.iceWorks
      setTimeout(() => {
        if (this.closed) return
        if (works) this.setIce('connected', 'connected')
        else this.fail()
      }, 0)
    }

    setIce (ice, connection) {
      if (this.closed) return
      this.iceConnectionState = ice
      this.oniceconnectionstatechange?.()
      this.connectionState = connection
      this.onconnectionstatechange?.()
    }

    /** ICE fails (both states, as browsers report it). */
    fail () { this.setIce('failed', 'failed') }

    async addIceCandidate (c) {
      if (this.remoteDescription === null) throw new Error('InvalidStateError: no remote description')
      if (c.usernameFragment != null && c.usernameFragment !== ufragOf(this.remoteDescription.sdp)) throw new Error('OperationError: unknown ufrag ' + c.usernameFragment)
      this.candidates.push(c)
    }

    async getStats () { return world.stats(this) }

    close () {
      this.closed = true
      this.signalingState = 'closed'
      this.connectionState = 'closed'
      this.iceConnectionState = 'closed'
    }
  }
  world.RTCPeerConnection = FakePeerConnection
  return world
}
