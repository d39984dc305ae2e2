// Requests that outlast bad networks: a failed request is sent again after a growing delay, and
// while the browser is offline it waits for the network instead of failing (for uploads, whose
// parts are safe to send twice).

import { ApiError } from './api.js'

const MAX_RETRY_DELAY_MS = 15_000

/** What uploads know of the network. */
export interface Network {
  offline (): boolean
  /** Settles when the network is back (or rejects when `signal` aborts). */
  online (signal?: AbortSignal): Promise<void>
}

/** The browser's view: `navigator.onLine` and the window's `online` event. */
export const browserNetwork: Network = {
  offline: () => typeof navigator !== 'undefined' && navigator.onLine === false,
  online: (signal) => new Promise<void>((resolve, reject) => {
    if (typeof window === 'undefined' || !browserNetwork.offline()) { resolve(); return }
    const done = (): void => { window.removeEventListener('online', done); signal?.removeEventListener('abort', stop); resolve() }
    const stop = (): void => { window.removeEventListener('online', done); reject(signal?.reason) }
    window.addEventListener('online', done)
    signal?.addEventListener('abort', stop, { once: true })
  })
}

/** Whether a failed request may succeed when sent again. */
export function retryable (err: unknown): boolean {
  if (!(err instanceof ApiError)) return false
  return err.status === 0 || err.status === 408 || err.status === 429 || err.status >= 500
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> => new Promise((resolve, reject) => {
  const timer = setTimeout(() => { signal?.removeEventListener('abort', stop); resolve() }, ms)
  const stop = (): void => { clearTimeout(timer); reject(signal?.reason) }
  signal?.addEventListener('abort', stop, { once: true })
})

/** How `persistently` tries a request again. */
export interface Attempts {
  retries: number
  delayMs: number
  network: Network
  signal?: AbortSignal
  /** Told when the upload starts or stops waiting for the network. */
  onOffline: (waiting: boolean) => void
}

/**
 * Runs `send` until it succeeds: while the browser is offline it waits for the network (and
 * tries again with a fresh count); a network failure or a 408/429/5xx answer is retried after
 * a growing delay, at most `retries` times; anything else is thrown at once.
 */
export async function persistently<T> (send: () => Promise<T>, a: Attempts): Promise<T> {
  let failures = 0
  for (;;) {
    a.signal?.throwIfAborted()
    if (a.network.offline()) {
      a.onOffline(true)
      await a.network.online(a.signal)
      a.onOffline(false)
      failures = 0
    }
    try {
      return await send()
    } catch (err) {
      if (a.signal?.aborted === true) throw a.signal.reason
      if (!retryable(err)) throw err
      // A fetch that failed because the network went away: wait for it rather than count.
      if ((err as ApiError).status === 0 && a.network.offline()) continue
      if (++failures > a.retries) throw err
      await sleep(Math.min(MAX_RETRY_DELAY_MS, a.delayMs * 2 ** (failures - 1)), a.signal)
    }
  }
}
