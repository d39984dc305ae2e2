// Keeping a call's TURN credentials fresh. A TURN server with time-limited credentials refuses an
// allocation's refreshes once they have expired (the TURN REST API's usernames carry their expiry,
// https://datatracker.ietf.org/doc/html/draft-uberti-behave-turn-rest-00), and a call relayed
// through it drops. So before they expire the call fetches fresh ICE servers, gives them to every
// connection and restarts ICE, which makes new allocations with them (call-link.ts); the other side
// of each connection answers the restart, gathering with its own servers, which it refreshes on
// its own schedule the same way.

import { CallError, type IceSchedule } from './call-protocol.js'

/** ICE servers for the connections, and when they are due for a refresh (null: never). */
export interface Ice { servers: RTCIceServer[], schedule: IceSchedule | null }

/** A refresh that failed is tried again halfway to the expiry, while that is at least this far off. */
export const ICE_RETRY_MIN_MS = 250

/** What the refresh needs from its call. */
export interface IceRefreshContext {
  /**
   * Fresh servers, with a fresh token; null when `live()` turned false on the way (the call
   * ended, or rejoined, while the token was asked for): then nothing is fetched.
   */
  fetch: (live: () => boolean) => Promise<Ice | null>
  /** Clock in unix ms (the schedule's). */
  now: () => number
  /** Fresh servers arrived: give them to every connection and restart ICE. */
  fresh: (servers: RTCIceServer[]) => void
  /** A refresh failed (it is tried again while the servers in use still work). */
  failed: (error: CallError) => void
}

/** The timer of the next refresh of a call's ICE servers. */
export class IceRefresh {
  private timer: ReturnType<typeof setTimeout> | undefined
  /** Counts schedules: a fetch under way for an older one (before a rejoin, a leave) is dropped. */
  private epoch = 0

  constructor (private readonly ctx: IceRefreshContext) {}

  /** Refreshes at `schedule.refreshAt` (null: never), instead of any refresh scheduled before. */
  schedule (schedule: IceSchedule | null): void {
    this.stop()
    if (schedule !== null) this.at(schedule.refreshAt, this.epoch, schedule)
  }

  /** No more refreshes; one under way is dropped when its fetch returns. */
  stop (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.epoch++
  }

  private at (when: number, epoch: number, current: IceSchedule): void {
    this.timer = setTimeout(() => { void this.run(epoch, current) }, Math.max(0, when - this.ctx.now()))
  }

  private async run (epoch: number, current: IceSchedule): Promise<void> {
    this.timer = undefined
    let ice: Ice | null
    try {
      ice = await this.ctx.fetch(() => epoch === this.epoch)
    } catch (err) {
      if (epoch !== this.epoch) return
      this.ctx.failed(err instanceof CallError && err.code === 'token'
        ? err
        : new CallError('ice-servers', `refreshing the ICE servers failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err }))
      const wait = (current.expiresAt - this.ctx.now()) / 2
      if (epoch === this.epoch && wait >= ICE_RETRY_MIN_MS) this.at(this.ctx.now() + wait, epoch, current)
      return
    }
    if (ice === null || epoch !== this.epoch) return
    this.schedule(ice.schedule)
    this.ctx.fresh(ice.servers)
  }
}
