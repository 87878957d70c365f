/**
 * One conversation's event stream on this node, shared by every local socket subscribed to it.
 *
 * Events that change stored messages carry the conversation's event seq (messages_version), which
 * goes up by one with every change. Nodes publish after their commits, so events can arrive out of
 * order (two nodes), twice, or not at all (Redis Pub/Sub is at most once). The feed delivers them
 * in seq order, each once: a duplicate or an old seq is dropped; a seq beyond the next one waits a
 * moment for the missing ones, then the gap is filled from the database (the changed messages in
 * their current state) — so subscribers never see a gap, whatever the bus did.
 */

/** What a subscriber receives: the envelope text (serialized once per node) and its seq. */
export interface FeedSubscriber {
  /** Seq'd events at or below this are not delivered again (the subscriber has them). */
  from: number;
  /**
   * `frame`: the envelope — its UTF-8 bytes when the feed has several subscribers (encoded once for
   * all of them, sent as a text frame), else the string. `staffOnly`: a private note; the subscriber
   * drops it unless it is staff (its `from` still moves).
   */
  deliver(frame: string | Buffer, seq: number | undefined, staffOnly: boolean): void;
}

/** Changes after `since` in seq order, as envelopes, and the conversation's version. */
export type FillFn = (since: number) => Promise<{ version: number; events: Array<{ seq: number; json: string; staffOnly?: boolean }> }>;

export interface FeedOptions {
  /** How long an out-of-order event waits for the missing ones before the database fills the gap. */
  gapWaitMs: number;
  /** Subscribers served per event-loop turn: a big room is delivered in chunks (no long stall). */
  chunk: number;
  onError(err: unknown): void;
}

export class ConversationFeed {
  readonly subscribers = new Set<FeedSubscriber>();
  /** Last seq delivered; undefined until the first subscriber told us where the stream stands. */
  #last: number | undefined;
  readonly #early = new Map<number, { json: string; staffOnly: boolean }>();
  #gapTimer: NodeJS.Timeout | undefined;
  #filling = false;
  /** Deliveries waiting for their turn (chunked fan-out keeps events in order). */
  readonly #queue: Array<{ json: string; seq: number | undefined; staffOnly: boolean; frame?: string | Buffer }> = [];
  #pumping = false;

  constructor(
    private readonly fill: FillFn,
    private readonly opts: FeedOptions,
  ) {}

  get last(): number | undefined {
    return this.#last;
  }

  /**
   * The stream position is known (from a database read made after the feed existed). Only the first
   * call counts: a later subscriber's read can be ahead of events still on the bus, and moving the
   * feed to it would skip them for the subscribers already here (the later one's `from` keeps it
   * from getting what it read itself; a gap is filled as usual).
   */
  start(version: number): void {
    if (this.#last !== undefined) return;
    this.#last = version;
    for (const seq of [...this.#early.keys()]) if (seq <= version) this.#early.delete(seq);
    this.#drain();
  }

  /** A frame from the bus. */
  onEvent(seq: number | undefined, json: string, staffOnly = false): void {
    if (seq === undefined) return this.#enqueue(json, undefined, staffOnly);
    if (this.#last === undefined || seq > this.#last + 1 || this.#filling) {
      if (this.#last === undefined || seq > this.#last) this.#early.set(seq, { json, staffOnly });
      if (this.#last !== undefined) this.#armGapTimer();
      return;
    }
    if (seq <= this.#last) return;
    this.#last = seq;
    this.#enqueue(json, seq, staffOnly);
    this.#drain();
  }

  stop(): void {
    clearTimeout(this.#gapTimer);
    this.#early.clear();
    this.#queue.length = 0;
  }

  #drain(): void {
    if (this.#last === undefined) return;
    let next: { json: string; staffOnly: boolean } | undefined;
    while ((next = this.#early.get(this.#last + 1)) !== undefined) {
      this.#early.delete(this.#last + 1);
      this.#last += 1;
      this.#enqueue(next.json, this.#last, next.staffOnly);
    }
    if (this.#early.size === 0) {
      clearTimeout(this.#gapTimer);
      this.#gapTimer = undefined;
    } else this.#armGapTimer();
  }

  #armGapTimer(): void {
    if (this.#gapTimer !== undefined || this.#filling) return;
    this.#gapTimer = setTimeout(() => {
      this.#gapTimer = undefined;
      void this.#fillGap();
    }, this.opts.gapWaitMs);
    this.#gapTimer.unref();
  }

  /** Read what changed since the last delivered event from the database (after the bus was cut off). */
  catchUp(): Promise<void> {
    // A fill already running may have read before the outage ended: read again after it.
    if (this.#filling) {
      this.#again = true;
      return Promise.resolve();
    }
    return this.#fillGap(true);
  }
  #again = false;

  async #fillGap(force = false): Promise<void> {
    if (this.#last === undefined || this.#filling || (!force && this.#early.size === 0)) return;
    this.#filling = true;
    try {
      const { version, events } = await this.fill(this.#last);
      for (const e of events) {
        if (e.seq <= this.#last) continue;
        this.#last = e.seq;
        this.#enqueue(e.json, e.seq, e.staffOnly === true);
      }
      if (version > this.#last) this.#last = version;
      for (const seq of [...this.#early.keys()]) if (seq <= this.#last) this.#early.delete(seq);
    } catch (err) {
      this.opts.onError(err);
    } finally {
      this.#filling = false;
      this.#drain();
      if (this.#again) {
        this.#again = false;
        void this.#fillGap(true);
      }
    }
  }

  #enqueue(json: string, seq: number | undefined, staffOnly: boolean): void {
    this.#queue.push({ json, seq, staffOnly });
    if (!this.#pumping) this.#pump();
  }

  /** Delivers queued events in order; a room larger than `chunk` yields to the event loop between chunks. */
  #pump(): void {
    this.#pumping = true;
    let budget = this.opts.chunk;
    while (this.#queue.length) {
      const head = this.#queue[0]!;
      const { seq, staffOnly } = head;
      const subs = this.#pending ?? [...this.subscribers];
      // Encoded once per event, not once per socket (ws would encode a string for every send).
      const frame = (head.frame ??= subs.length > 1 ? Buffer.from(head.json) : head.json);
      while (subs.length) {
        if (budget-- <= 0) {
          this.#pending = subs;
          setImmediate(() => this.#pump());
          return;
        }
        const s = subs.pop()!;
        if (!this.subscribers.has(s)) continue;
        if (seq !== undefined) {
          if (seq <= s.from) continue;
          s.from = seq;
        }
        try {
          s.deliver(frame, seq, staffOnly);
        } catch (err) {
          this.opts.onError(err);
        }
      }
      this.#pending = undefined;
      this.#queue.shift();
    }
    this.#pumping = false;
  }
  #pending: FeedSubscriber[] | undefined;
}
