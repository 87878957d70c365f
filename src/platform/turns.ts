/**
 * Background work that must not crowd out requests: each caller of `next()` gets its own
 * event-loop turn (released from setImmediate, after the poll phase), so between two pieces of
 * background work the process reads and answers every request that arrived meanwhile. Idle, a
 * turn is a few microseconds; saturated with requests, background work gets one slot per turn and
 * the requests the rest — their latency stays that of a request, not of a request queued behind a
 * backlog (measured on webhook acks: see BENCHMARKS.md, inbound).
 */
export class TurnGate {
  readonly #waiting: Array<() => void> = [];
  #scheduled = false;

  /** Resolves in a later event-loop turn than every earlier caller's. */
  next(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#waiting.push(resolve);
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#release);
      }
    });
  }

  /** Callers waiting for their turn. */
  get waiting(): number {
    return this.#waiting.length;
  }

  readonly #release = (): void => {
    this.#waiting.shift()?.();
    // The next turn is booked after the released caller's first step has run (its continuation was
    // queued first): what that step schedules for the next turn goes before the next caller.
    queueMicrotask(() => {
      if (this.#waiting.length > 0) setImmediate(this.#release);
      else this.#scheduled = false;
    });
  };
}
