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
  readonly #waiting: Array<{ go: () => void; counted: boolean }> = [];
  #scheduled = false;
  #running = 0;

  /**
   * `maxRunning` bounds the work started through run() that has not finished: beyond it, callers
   * wait (in call order) for a slot as well as for a turn.
   */
  constructor(
    private readonly perTurn = 1,
    private readonly maxRunning = Infinity,
  ) {}

  /** Resolves in a later event-loop turn than every earlier caller's (run()s waiting for a slot included). */
  next(): Promise<void> {
    return this.#wait(false);
  }

  /** Runs `work` in its own turn (as next()) once fewer than `maxRunning` run()s are unfinished. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    await this.#wait(true);
    try {
      return await work();
    } finally {
      this.#running -= 1;
      if (this.#waiting.length > 0) this.#schedule();
    }
  }

  /** Callers waiting for their turn. */
  get waiting(): number {
    return this.#waiting.length;
  }

  #wait(counted: boolean): Promise<void> {
    return new Promise<void>((go) => {
      this.#waiting.push({ go, counted });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#release);
  }

  #blocked(): boolean {
    const first = this.#waiting[0];
    return first === undefined || (first.counted && this.#running >= this.maxRunning);
  }

  readonly #release = (): void => {
    for (let n = 0; n < this.perTurn && !this.#blocked(); n++) {
      const first = this.#waiting.shift()!;
      if (first.counted) this.#running += 1;
      first.go();
    }
    // The next turn is booked after the released callers' first steps have run (their continuations
    // were queued first): what those steps schedule for the next turn goes before the next callers.
    // Waiting for a slot, the run() that frees one books it.
    queueMicrotask(() => {
      if (!this.#blocked()) setImmediate(this.#release);
      else this.#scheduled = false;
    });
  };
}

/**
 * Calls `fn` on every item, at most `perTurn` per event-loop turn: between two groups the process
 * reads and answers what arrived meanwhile (I/O callbacks and earlier setImmediates run first). For
 * a burst of small pieces of work that together would stall the loop (the heartbeat's pings).
 */
export async function forEachInTurns<T>(items: Iterable<T>, perTurn: number, fn: (item: T) => void | Promise<void>): Promise<void> {
  let n = 0;
  for (const item of items) {
    if (n > 0 && n % perTurn === 0) await nextTurn();
    n += 1;
    await fn(item);
  }
}

function nextTurn(): Promise<void> {
  return new Promise((go) => setImmediate(go));
}
