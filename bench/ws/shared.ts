/**
 * What the WebSocket benchmark's processes share: the IPC messages between the harness and its
 * load-generator processes, the message-body format that carries the send time, and a mergeable
 * latency histogram.
 *
 * NOTE: clock. Send and receive times are `performance.timeOrigin + performance.now()` (wall
 * clock in ms with sub-ms resolution) taken in different processes of the same machine; they
 * share the system clock, so the difference is the one-way latency.
 */

/** Wall-clock time in ms, sub-ms resolution, comparable across processes of one machine. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

/** The text of a benchmark message: `wsbench:<n>:<send time ms>:`, found by clients without parsing the frame. */
export const MARK = 'wsbench:';
export const messageBody = (n: number, t: number): string => `${MARK}${n}:${t.toFixed(3)}:`;

/** `{n, t}` from the text after MARK (`<n>:<t>:...`), or undefined. */
export function parseMark(after: string): { n: number; t: number } | undefined {
  const a = after.indexOf(':');
  const b = after.indexOf(':', a + 1);
  if (a < 0 || b < 0) return undefined;
  const n = Number(after.slice(0, a));
  const t = Number(after.slice(a + 1, b));
  return Number.isFinite(n) && Number.isFinite(t) ? { n, t } : undefined;
}

/**
 * Latency histogram: bucket i holds values whose log-scaled index is i (about 2 % wide), so
 * histograms of several processes merge by adding counts and quantiles stay within ~2 %.
 */
const SCALE = 50;
const SIZE = 1200; // exp(1200 / 50) µs ≈ 26,000 s: anything longer goes into the last bucket
export class Histogram {
  readonly counts: number[];
  count = 0;
  max = 0;
  sum = 0;

  constructor(counts?: number[]) {
    this.counts = counts ? [...counts] : new Array<number>(SIZE).fill(0);
  }

  record(ms: number): void {
    const us = Math.max(0, ms * 1000);
    const i = Math.min(SIZE - 1, Math.floor(Math.log1p(us) * SCALE));
    this.counts[i]! += 1;
    this.count++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  merge(other: HistogramData): void {
    for (let i = 0; i < SIZE; i++) this.counts[i]! += other.counts[i] ?? 0;
    this.count += other.count;
    this.sum += other.sum;
    this.max = Math.max(this.max, other.max);
  }

  /** The q-quantile (0..1) in ms: the middle of its bucket; NaN when empty. */
  quantile(q: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < SIZE; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(this.max, (Math.expm1((i + 0.5) / SCALE)) / 1000);
    }
    return this.max;
  }

  toData(): HistogramData {
    return { counts: this.counts, count: this.count, max: this.max, sum: this.sum };
  }
}
export interface HistogramData {
  counts: number[];
  count: number;
  max: number;
  sum: number;
}

export type Target = 'parley' | 'bare' | 'socketio';

/** Harness → load client. Every command has a request id, echoed by its reply. */
export type ClientCommand =
  | {
      cmd: 'connect';
      rid: number;
      target: Target;
      /** http://host:port of the server. */
      base: string;
      tokens: string[];
      /** Connection i uses tokens[i % tokens.length] and subscribes to rooms[i] (null: none). */
      rooms: Array<string | null>;
      /** Connections being opened at once. */
      concurrency: number;
      /** Source address of the connections (127.0.0.x), so rounds do not share ephemeral ports. */
      localAddress: string;
      /** Report `done` for message n once every subscribed connection of this process has it. */
      trackCompletion: boolean;
    }
  | { cmd: 'measure'; rid: number; on: boolean }
  | { cmd: 'send'; rid: number; ratePerSec: number; durationMs: number }
  /** Reconnect storm, part 1: note each subscription's last seq, then drop every connection at once. */
  | { cmd: 'drop'; rid: number }
  /** Part 2: reconnect all at once and resubscribe with `since_seq` (resume). */
  | { cmd: 'storm'; rid: number; concurrency: number; localAddress: string }
  | { cmd: 'close'; rid: number };

export interface ClientStats {
  deliveries: number;
  /** Frames that were not `message` frames (presence, acks...). */
  otherFrames: number;
  latency: HistogramData;
  /** CPU time of this process over the window, as a share of one core. */
  cpu: number;
  wallMs: number;
  rssBytes: number;
  /** Connections the server closed or that failed during the window. */
  lost: number;
  errors: string[];
}

/** Load client → harness. */
export type ClientEvent =
  | { ev: 'ready'; maxOpenFiles: string }
  | { ev: 'connected'; rid: number; ok: number; failed: number; ms: number; errors: string[] }
  | { ev: 'stats'; rid: number; stats: ClientStats }
  | { ev: 'sent'; rid: number; sent: number; acked: number; failed: number; errors: string[] }
  | { ev: 'dropped'; rid: number }
  | { ev: 'stormed'; rid: number; ok: number; failed: number; ms: number; replayed: number; errors: string[] }
  | { ev: 'closed'; rid: number }
  | { ev: 'done'; ns: number[] }
  | { ev: 'error'; rid: number; message: string };

/** Harness → publisher. */
export type PublisherCommand =
  | {
      cmd: 'start';
      rid: number;
      /** POST <base>/api/v1/channels/<channel>/messages with the token. */
      base: string;
      channel: string;
      token: string;
      /** closed: `window` messages in flight, one more per credit; rate: `rate` messages per second. */
      mode: 'closed' | 'rate';
      window: number;
      rate: number;
    }
  | { cmd: 'credit'; n: number }
  | { cmd: 'stop'; rid: number };

export interface PublisherStats {
  posted: number;
  ok: number;
  failed: number;
  errors: string[];
  cpu: number;
  wallMs: number;
  /** HTTP request → response time of the POSTs. */
  latency: HistogramData;
}

export type PublisherEvent = { ev: 'ready' } | { ev: 'started'; rid: number } | { ev: 'stopped'; rid: number; stats: PublisherStats };

/** Max open files of this process, from /proc (Linux), e.g. "20000". */
export async function maxOpenFiles(): Promise<string> {
  try {
    const { readFile } = await import('node:fs/promises');
    const line = (await readFile('/proc/self/limits', 'utf8')).split('\n').find((l) => l.startsWith('Max open files'));
    return line?.trim().split(/\s+/)[3] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
