/**
 * Background work that must not crowd out requests: callers of `next()` are let through at most
 * `perTurn` per event-loop turn (released from setImmediate, after the poll phase), so between two
 * groups of background work the process reads and answers every request that arrived meanwhile.
 * Idle, a turn is a few microseconds; saturated with requests, background work gets `perTurn` slots
 * per turn and the requests the rest — their latency stays that of a request, not of a request
 * queued behind a backlog (measured on webhook acks: see BENCHMARKS.md, inbound).
 *
 * More than one per turn lets their writes share commits (SQLite's group commit takes the writes of
 * a turn together).
 */
export class TurnGate {
  readonly #waiting: Array<() => void> = [];
  #scheduled = false;

  constructor(private readonly perTurn = 1) {}

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
    for (const go of this.#waiting.splice(0, this.perTurn)) go();
    // The next turn is booked after the released callers' first steps have run (their continuations
    // were queued first): what those steps schedule for the next turn goes before the next callers.
    queueMicrotask(() => {
      if (this.#waiting.length > 0) setImmediate(this.#release);
      else this.#scheduled = false;
    });
  };
}
