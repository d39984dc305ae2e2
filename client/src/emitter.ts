/** A tiny typed event emitter: `on` returns the function that unsubscribes. */
export class Emitter<Events extends Record<string, unknown>> {
  private readonly listeners = new Map<keyof Events, Set<(payload: never) => void>>()

  /** Calls `fn` on every `event` until the returned function is called. */
  on<K extends keyof Events> (event: K, fn: (payload: Events[K]) => void): () => void {
    let set = this.listeners.get(event)
    if (set === undefined) {
      set = new Set()
      this.listeners.set(event, set)
    }
    set.add(fn as (payload: never) => void)
    return () => { set.delete(fn as (payload: never) => void) }
  }

  /** Calls every listener of `event`; a listener that throws does not stop the others. */
  emit<K extends keyof Events> (event: K, payload: Events[K]): void {
    const set = this.listeners.get(event)
    if (set === undefined) return
    for (const fn of [...set]) {
      try {
        (fn as (payload: Events[K]) => void)(payload)
      } catch (err) {
        // A broken listener must not break the connection logic that emitted the event.
        queueMicrotask(() => { throw err })
      }
    }
  }

  /** Removes every listener. */
  clear (): void {
    this.listeners.clear()
  }
}
