// Who is speaking, from WebRTC's audio levels: a threshold with hysteresis and a hold time, so a
// speaker's outline does not flicker between syllables. No I/O: the call polls `getStats()` and
// hands the levels in with the time.

/** Thresholds of `SpeakingDetector`. */
export interface SpeakingOptions {
  /** Level (0..1, linear, as WebRTC's `audioLevel`) at which speaking starts (default 0.04). */
  on?: number
  /** Level below which a speaker counts as silent (default 0.015). */
  off?: number
  /** How long a speaker must stay below `off` before `speaking` turns false, in ms (default 600). */
  holdMs?: number
}

/**
 * Turns a series of audio levels into a speaking flag. `audioLevel` is linear in amplitude
 * (1.0 is 0 dBov, https://w3c.github.io/webrtc-stats/#dom-rtcaudiosourcestats-audiolevel):
 * 0.04 is about -28 dBov, above a quiet room's noise and below normal speech at a headset.
 */
export class SpeakingDetector {
  private readonly on: number
  private readonly off: number
  private readonly holdMs: number
  private lastLoud = -Infinity
  private state = false

  constructor (options: SpeakingOptions = {}) {
    this.on = options.on ?? 0.04
    this.off = options.off ?? 0.015
    this.holdMs = options.holdMs ?? 600
  }

  /** Whether the last level given meant speaking. */
  get speaking (): boolean {
    return this.state
  }

  /** Takes the level measured at `now` (ms); returns whether the source is speaking. */
  update (level: number, now: number): boolean {
    if (level >= this.on || (this.state && level >= this.off)) {
      this.lastLoud = now
      this.state = true
    } else if (this.state && now - this.lastLoud >= this.holdMs) {
      this.state = false
    }
    return this.state
  }

  /** Back to silent (a muted microphone, a closed connection). */
  reset (): void {
    this.state = false
    this.lastLoud = -Infinity
  }
}

/** The audio levels in one `getStats()` report: the local microphone's and the received audio's. */
export interface AudioLevels {
  /** `media-source` of kind audio: what the local microphone captures, or null when not reported. */
  source: number | null
  /** `inbound-rtp` of kind audio: what arrives from the other side, or null when not reported. */
  inbound: number | null
}

/** Reads the audio levels of a stats report (the highest when there are several). */
export function audioLevels (report: RTCStatsReport): AudioLevels {
  const levels: AudioLevels = { source: null, inbound: null }
  report.forEach((stat: { type?: string, kind?: string, audioLevel?: number }) => {
    if (stat.kind !== 'audio' || typeof stat.audioLevel !== 'number') return
    if (stat.type === 'media-source') levels.source = Math.max(levels.source ?? 0, stat.audioLevel)
    else if (stat.type === 'inbound-rtp') levels.inbound = Math.max(levels.inbound ?? 0, stat.audioLevel)
  })
  return levels
}
