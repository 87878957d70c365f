/**
 * The harness side of the load generators: child processes (bench/ws/load-client.ts,
 * bench/ws/publisher.ts) talking IPC, stopped by the benchmark cleanup; and /proc readings of
 * servers (CPU time, RSS, open-file limit).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { baseEnv } from '../lib/parley.ts';
import { onCleanup } from '../lib/proc.ts';
import { type ClientCommand, type ClientEvent, type ClientStats, Histogram, type PublisherCommand, type PublisherEvent, type PublisherStats, type Target } from './shared.ts';

type WithRid<T> = T extends { rid: number } ? Omit<T, 'rid'> : never;

/** One IPC child: `call()` sends a command and resolves with the reply carrying its request id. */
class IpcChild<Cmd extends { cmd: string }, Ev extends { ev: string }> {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (e: Ev) => void; reject: (e: Error) => void }>();
  #rid = 0;
  #tail = '';
  readonly ready: Promise<Ev>;
  onEvent: (e: Ev) => void = () => undefined;

  constructor(
    readonly name: string,
    root: string,
    script: string,
  ) {
    this.#child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: root, env: baseEnv(), stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    const keep = (c: Buffer) => (this.#tail = (this.#tail + c.toString('utf8')).slice(-8000));
    this.#child.stdout!.on('data', keep);
    this.#child.stderr!.on('data', keep);
    let readyResolve!: (e: Ev) => void;
    this.ready = new Promise((resolve) => (readyResolve = resolve));
    this.#child.on('message', (e: Ev & { rid?: number; message?: string }) => {
      if (e.ev === 'ready') return readyResolve(e);
      const p = e.rid === undefined ? undefined : this.#pending.get(e.rid);
      if (!p) return this.onEvent(e);
      this.#pending.delete(e.rid!);
      if (e.ev === 'error') p.reject(new Error(`${name}: ${e.message}`));
      else p.resolve(e);
    });
    this.#child.on('exit', (code, sig) => {
      for (const p of this.#pending.values()) p.reject(new Error(`${name} exited (${code ?? sig})\n${this.#tail}`));
      this.#pending.clear();
    });
    const kill = () => void (this.#child.exitCode === null && this.#child.kill('SIGKILL'));
    onCleanup({ name, run: async () => kill(), sync: kill });
  }

  get pid(): number {
    return this.#child.pid!;
  }

  call<E extends Ev = Ev>(cmd: WithRid<Cmd>): Promise<E> {
    const rid = ++this.#rid;
    return new Promise<E>((resolve, reject) => {
      this.#pending.set(rid, { resolve: resolve as (e: Ev) => void, reject });
      this.#child.send({ ...cmd, rid });
    });
  }

  post(cmd: Cmd): void {
    if (this.#child.connected) this.#child.send(cmd);
  }
}

let sourceAddress = 1;
/** A new loopback source address for each batch of connections (127.0.0.2 ... 127.0.0.250), so runs do not compete for ephemeral ports. */
export const nextSourceAddress = (): string => `127.0.0.${(sourceAddress = (sourceAddress % 249) + 1) + 1}`;

export interface ConnectResult {
  ok: number;
  failed: number;
  /** Slowest process: from the command to its last connection ready. */
  ms: number;
  errors: string[];
}

/** The load-generator processes. Connections are split in contiguous blocks, one per process. */
export class Fleet {
  readonly clients: IpcChild<ClientCommand, ClientEvent>[] = [];
  maxOpenFiles: string[] = [];
  /** Called with message numbers that reached every subscriber of one process. */
  onDone: (ns: number[]) => void = () => undefined;

  static async start(root: string, processes: number): Promise<Fleet> {
    const f = new Fleet();
    for (let i = 0; i < processes; i++) {
      const c = new IpcChild<ClientCommand, ClientEvent>(`load-client-${i + 1}`, root, join(root, 'bench/ws/load-client.ts'));
      c.onEvent = (e) => e.ev === 'done' && f.onDone(e.ns);
      f.clients.push(c);
    }
    f.maxOpenFiles = (await Promise.all(f.clients.map((c) => c.ready))).map((e) => (e.ev === 'ready' ? e.maxOpenFiles : '?'));
    return f;
  }

  get pids(): number[] {
    return this.clients.map((c) => c.pid);
  }

  /**
   * Opens connections: `rooms[i]` is connection i's room (null: none), split into one contiguous
   * block per process (block sizes multiples of `align`, so a room of `align` stays in one process).
   * `bases[p]` is the server of process p (one base: all).
   */
  async connect(o: { target: Target; bases: string[]; tokens: string[]; rooms: Array<string | null>; concurrency: number; trackCompletion?: boolean; align?: number }): Promise<ConnectResult> {
    const blocks = this.split(o.rooms, o.align ?? 1);
    const address = nextSourceAddress();
    const replies = await Promise.all(
      this.clients.map((c, p) =>
        c.call<Extract<ClientEvent, { ev: 'connected' }>>({
          cmd: 'connect',
          target: o.target,
          base: o.bases[p % o.bases.length]!,
          // Offset the tokens so that connection i of the whole fleet uses tokens[i % n].
          tokens: rotate(o.tokens, blocks[p]!.offset),
          rooms: blocks[p]!.rooms,
          concurrency: o.concurrency,
          localAddress: address,
          trackCompletion: o.trackCompletion ?? false,
        }),
      ),
    );
    return { ok: sum(replies.map((r) => r.ok)), failed: sum(replies.map((r) => r.failed)), ms: Math.max(...replies.map((r) => r.ms)), errors: replies.flatMap((r) => r.errors) };
  }

  split<T>(items: T[], align: number): Array<{ offset: number; rooms: T[] }> {
    const n = this.clients.length;
    const per = Math.ceil(items.length / n / align) * align;
    return this.clients.map((_, p) => ({ offset: p * per, rooms: items.slice(p * per, (p + 1) * per) }));
  }

  async measure(on: boolean): Promise<ClientStats[]> {
    const r = await Promise.all(this.clients.map((c) => c.call<Extract<ClientEvent, { ev: 'stats' }>>({ cmd: 'measure', on })));
    return r.map((e) => e.stats);
  }

  all<E extends ClientEvent>(cmd: WithRid<ClientCommand>): Promise<E[]> {
    return Promise.all(this.clients.map((c) => c.call<E>(cmd)));
  }

  close(): Promise<unknown> {
    return this.all({ cmd: 'close' });
  }
}

const rotate = <T>(list: T[], by: number): T[] => list.map((_, i) => list[(i + by) % list.length]!);
export const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

/** Client stats of all processes together. */
export function mergeStats(stats: ClientStats[]): { deliveries: number; perSec: number; hist: Histogram; cpuMax: number; cpuSum: number; lost: number; errors: string[]; rssBytes: number } {
  const hist = new Histogram();
  for (const s of stats) hist.merge(s.latency);
  const deliveries = sum(stats.map((s) => s.deliveries));
  const wall = Math.max(...stats.map((s) => s.wallMs));
  return {
    deliveries,
    perSec: (deliveries / wall) * 1000,
    hist,
    cpuMax: Math.max(...stats.map((s) => s.cpu)),
    cpuSum: sum(stats.map((s) => s.cpu)),
    lost: sum(stats.map((s) => s.lost)),
    errors: stats.flatMap((s) => s.errors).slice(0, 10),
    rssBytes: sum(stats.map((s) => s.rssBytes)),
  };
}

/** The publisher process (HTTP POSTs of messages). */
export class Publisher {
  readonly #child: IpcChild<PublisherCommand, PublisherEvent>;
  private constructor(root: string) {
    this.#child = new IpcChild<PublisherCommand, PublisherEvent>('publisher', root, join(root, 'bench/ws/publisher.ts'));
  }

  static async start(root: string): Promise<Publisher> {
    const p = new Publisher(root);
    await p.#child.ready;
    return p;
  }

  get pid(): number {
    return this.#child.pid;
  }

  async begin(o: { base: string; channel: string; token: string; mode: 'closed' | 'rate'; window?: number; rate?: number }): Promise<void> {
    await this.#child.call({ cmd: 'start', window: 0, rate: 0, ...o });
  }

  credit(n: number): void {
    this.#child.post({ cmd: 'credit', n });
  }

  async end(): Promise<PublisherStats> {
    const e = await this.#child.call<Extract<PublisherEvent, { ev: 'stopped' }>>({ cmd: 'stop' });
    return e.stats;
  }
}

// ------------------------------------------------------------------ /proc readings of a process

let clkTck: number | undefined;
const ticksPerSec = (): number => {
  try {
    clkTck ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    clkTck = 100;
  }
  return clkTck;
};

/** CPU seconds (user + system) used so far by `pid`. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / ticksPerSec();
}

/** Resident set size of `pid` in bytes (VmRSS). */
export function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(line?.split(/\s+/)[1] ?? NaN) * 1024;
}

/** The soft "Max open files" limit of `pid`. */
export function openFileLimit(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'))?.trim().split(/\s+/)[3] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Measures the CPU share of one core used by `pid` between `start()` and `stop()`. */
export function cpuMeter(pid: number): () => number {
  const t0 = performance.now();
  const c0 = cpuSeconds(pid);
  return () => (cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000);
}
