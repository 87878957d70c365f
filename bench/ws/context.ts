/**
 * What every WebSocket scenario gets: the options of the run, the shared servers (started on first
 * use: Parley on SQLite with its fixture, the bare `ws` and the Socket.IO servers), the load
 * processes, and the CPU accounting of a measured window.
 */
import type { Machine } from '../lib/machine.ts';
import { cpuSnapshot, foreignCpuShare } from '../lib/machine.ts';
import { makeTempDir } from '../lib/proc.ts';
import { cpuMeter, Fleet, Publisher } from './fleet.ts';
import { type Fixture, type Server, setupFixture, startBaseline, startParley } from './servers.ts';
import type { Target } from './shared.ts';

export interface WsOptions {
  rounds: number;
  durationSec: number;
  warmupSec: number;
  /** Subscribers of the big room (fan-out, latency). */
  bigRoom: number;
  /** Messages per second of the big-room latency run. */
  latencyRate: number;
  /** Idle connections of the memory run, and clients of the reconnect storm. */
  idle: number;
  /** Connections opened per connect-rate round. */
  connects: number;
  /** Small rooms: connections, room size and messages per second over the sockets. */
  smallConnections: number;
  smallRoomSize: number;
  smallRate: number;
  /** Load-generator processes. */
  processes: number;
  /** Closed-loop window of the saturation publisher (messages not yet delivered everywhere). */
  window: number;
}

export interface WsContext {
  root: string;
  resultsDir: string;
  command: string;
  machine: Machine;
  opts: WsOptions;
  /** True when the options are the defaults (BENCHMARKS.md is written only then). */
  defaults: boolean;
  log(line: string): void;
  env: SharedEnv;
}

/** Servers and load processes shared by the scenarios of one run, started when first asked for. */
export class SharedEnv {
  #parley: Promise<{ server: Server; fixture: Fixture }> | undefined;
  #baselines = new Map<Target, Promise<Server>>();
  #fleet: Promise<Fleet> | undefined;
  #publisher: Promise<Publisher> | undefined;
  readonly dir = makeTempDir('parley-bench-ws-shared-');

  constructor(
    private readonly root: string,
    private readonly processes: number,
    private readonly log: (l: string) => void,
    /** Node flags of the shared Parley (--cpu-prof). */
    private readonly parleyFlags: string[] = [],
  ) {}

  /** Stops the shared Parley (when started), e.g. so that it writes its CPU profile. */
  async stopParley(): Promise<void> {
    if (!this.#parley) return;
    await (await this.#parley).server.service.stop();
  }

  parley(): Promise<{ server: Server; fixture: Fixture }> {
    this.#parley ??= (async () => {
      this.log('starting Parley (SQLite) and registering the benchmark users');
      const server = await startParley(this.root, { dataDir: this.dir, nodeFlags: this.parleyFlags });
      return { server, fixture: await setupFixture(server.base, this.dir) };
    })();
    return this.#parley;
  }

  async server(target: Target): Promise<Server> {
    if (target === 'parley') return (await this.parley()).server;
    let s = this.#baselines.get(target);
    if (!s) {
      const { fixture } = await this.parley();
      this.log(`starting the ${target === 'bare' ? 'bare ws' : 'Socket.IO'} server`);
      s = startBaseline(this.root, target, fixture.templateFile);
      this.#baselines.set(target, s);
    }
    return s;
  }

  fleet(): Promise<Fleet> {
    this.#fleet ??= Fleet.start(this.root, this.processes);
    return this.#fleet;
  }

  publisher(): Promise<Publisher> {
    this.#publisher ??= Publisher.start(this.root);
    return this.#publisher;
  }
}

/** CPU use during a measured window: the server's share of one core, the whole machine's, and other processes'. */
export interface CpuWindow {
  server: number;
  machineBusy: number | null;
  foreign: number | null;
}

/** Starts CPU accounting for a window; `ours` are every pid of the benchmark (servers, load processes). */
export function cpuWindow(serverPids: number[], ours: number[]): () => CpuWindow {
  const meters = serverPids.map((p) => cpuMeter(p));
  const before = cpuSnapshot(ours);
  return () => {
    const server = meters.reduce((a, m) => a + m(), 0);
    const after = cpuSnapshot(ours);
    const machineBusy = before && after && after.total > before.total ? (after.busy - before.busy) / (after.total - before.total) : null;
    return { server, machineBusy, foreign: foreignCpuShare(before, after) };
  };
}

/** Which side limited a saturation run, from the CPU figures. */
export function bottleneck(w: CpuWindow, clientCpuMax: number, cores: number): string {
  if (clientCpuMax >= 0.9) return `**clients** (a load process at ${pct(clientCpuMax)} of a core)`;
  if (w.server >= 0.9) return 'server (a full core)';
  if (w.machineBusy !== null && w.machineBusy >= 0.95) return `machine (${cores} cores ${pct(w.machineBusy)} busy; server got ${pct(w.server)})`;
  return 'none clear';
}

/** A warning for the section when processes outside the benchmark took a noticeable share of the machine during measured windows. */
export function contentionNote(windows: CpuWindow[]): string {
  const worst = Math.max(0, ...windows.map((w) => w.foreign ?? 0));
  if (worst < 0.1) return '';
  return `\n**Other processes (outside the benchmark) used up to ${pct(worst)} of the machine during the measured windows**, so the servers and load processes shared the cores with them: every target ran under the same kind of contention (rounds alternate), but absolute figures are lower and noisier than on an idle machine; see "other CPU" per run.\n`;
}

export const pct = (x: number | null): string => (x === null || !Number.isFinite(x) ? 'n/a' : `${Math.round(x * 100)} %`);
export const NAMES: Record<Target, string> = { parley: 'Parley', bare: 'bare ws', socketio: 'Socket.IO' };
