// Stand-ins for RTCPeerConnection, MediaStream and getUserMedia, enough for the call SDK to run
// a mesh in Node: offers and answers are real SDP text (one m= section per transceiver with its
// direction, answers intersecting directions as JSEP does), so the fake hub's media check reads
// them; a remote description whose section sends fires `track`; a remote offer creates the
// transceivers the answerer then fills. Two SDK clients in one process talk through them.

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

function parseSdp (sdp) {
  return sdp.split('\r\n').filter((l) => l.startsWith('m=')).map((l, i) => {
    const section = sdp.split('\r\nm=')[i + 1]
    return { kind: l.slice(2).split(' ')[0], direction: /a=(sendrecv|sendonly|recvonly|inactive)/.exec(section)[1] }
  })
}

/**
 * A world of fake peer connections. `forceSendrecv` makes every offer and answer claim
 * sendrecv (a browser that ignores the SDK's recvonly); `stats(pc)` answers getStats().
 */
export function createFakeRtc () {
  const world = {
    /** Every peer connection made, in order. */
    connections: [],
    /** Every getUserMedia call's constraints. */
    mediaRequests: [],
    forceSendrecv: false,
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
      this.transceivers = []
      this.localDescription = null
      this.remoteDescription = null
      this.candidates = []
      this.connectionState = 'new'
      this.closed = false
      this.onicecandidate = null
      this.ontrack = null
      this.onconnectionstatechange = null
      world.connections.push(this)
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

    sdp (directions) {
      return 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n' + this.transceivers.map((t, i) =>
        `m=${t.receiver.track.kind} 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:${i}\r\na=${world.forceSendrecv ? 'sendrecv' : directions[i]}\r\n`).join('')
    }

    async createOffer () {
      return { type: 'offer', sdp: this.sdp(this.transceivers.map((t) => t.direction)) }
    }

    async createAnswer () {
      const offered = parseSdp(this.remoteDescription.sdp)
      return { type: 'answer', sdp: this.sdp(this.transceivers.map((t, i) => answerDirection(offered[i].direction, t.direction))) }
    }

    async setLocalDescription (d) {
      if (this.closed) throw new Error('closed')
      this.localDescription = d
      // A candidate before the description has left: the other side must queue it.
      const candidate = { candidate: `candidate:1 1 udp 2122260223 127.0.0.1 ${9000 + world.connections.indexOf(this)} typ host`, sdpMid: '0', sdpMLineIndex: 0 }
      this.onicecandidate?.({ candidate: { ...candidate, toJSON: () => candidate } })
      setTimeout(() => this.onicecandidate?.({ candidate: null }), 0)
    }

    async setRemoteDescription (d) {
      if (this.closed) throw new Error('closed')
      this.remoteDescription = d
      const sections = parseSdp(d.sdp)
      sections.forEach((s, i) => {
        if (d.type === 'offer' && this.transceivers[i] === undefined) this.transceiver(s.kind, 'recvonly')
        const t = this.transceivers[i]
        t.mid = String(i)
        if (sends(s.direction)) this.ontrack?.({ track: t.receiver.track, streams: [], transceiver: t })
      })
      if (d.type === 'answer' || this.localDescription !== null) this.connect()
    }

    connect () {
      this.connectionState = 'connected'
      this.onconnectionstatechange?.()
    }

    async addIceCandidate (c) {
      if (this.remoteDescription === null) throw new Error('InvalidStateError: no remote description')
      this.candidates.push(c)
    }

    async getStats () { return world.stats(this) }

    close () {
      this.closed = true
      this.connectionState = 'closed'
    }
  }
  world.RTCPeerConnection = FakePeerConnection
  return world
}
