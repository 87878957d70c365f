/**
 * Parley's WebSocket benchmarks — `npm run bench:ws` (`tsx bench/ws/run.ts [scenarios...] [options]`).
 *
 * Parley's realtime gateway against a bare `ws` server and a Socket.IO server re-measured in the
 * same run, load generators in separate processes (bench/ws/load-client.ts, bench/ws/publisher.ts).
 * Each scenario rewrites its section of BENCHMARKS.md (`bench:ws-<scenario>` markers).
 *
 *   npm run bench:ws                      every scenario at full scale, results into BENCHMARKS.md
 *   npm run bench:ws -- fanout latency    some scenarios
 *   npm run bench:ws -- --quick fanout    small scale, short (development; BENCHMARKS.md not written)
 *   --rounds n --duration s --warmup s --clients n --idle n --processes n --window n   other protocol
 *   --no-write                            do not touch BENCHMARKS.md
 *   --cpu-prof                            profile the shared Parley server (node --cpu-prof) and print its top
 *                                         functions at the end; figures are then not written
 *
 * Exit status: 0 when every scenario measured (goal met or not), 1 when one failed, 2 on bad arguments.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { formatSummary, summarizeProfile } from '../lib/cpuprofile.ts';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchOutcome } from '../lib/benchmark.ts';
import { describeMachine, loadAverage, machine } from '../lib/machine.ts';
import { cleanup, installCleanupHandlers, interrupted, shellQuote } from '../lib/proc.ts';
import { fanout, latency } from './big-room.ts';
import { connectRate } from './connect.ts';
import { type WsContext, type WsOptions, SharedEnv } from './context.ts';
import { memory } from './memory.ts';
import { writeWsSection } from './report.ts';
import { smallRooms } from './small-rooms.ts';
import { twoNodes } from './two-nodes.ts';

/** The scenarios, in the order of the issue's priorities. */
const SCENARIOS: Array<{ id: string; title: string; run: (ctx: WsContext) => Promise<BenchOutcome> }> = [
  { id: 'fanout', title: 'deliveries/s to one room of 1,000 subscribers vs bare ws and Socket.IO', run: fanout },
  { id: 'latency', title: 'big-room p99 at 20 messages/s vs bare ws', run: latency },
  { id: 'memory', title: 'memory per idle authenticated connection at 10,000 connections', run: memory },
  { id: 'connect', title: 'connect rate with token check vs bare ws; reconnect storm of 10,000 with resume', run: connectRate },
  { id: 'small-rooms', title: '5,000 connections in rooms of 5, 1,000 messages/s over WebSocket', run: smallRooms },
  { id: 'two-nodes', title: 'two nodes (PostgreSQL + Redis): added p99 across nodes', run: twoNodes },
];

const DEFAULTS: WsOptions = {
  rounds: 3,
  durationSec: 10,
  warmupSec: 2,
  bigRoom: 1000,
  latencyRate: 20,
  idle: 10_000,
  connects: 5000,
  smallConnections: 5000,
  smallRoomSize: 5,
  smallRate: 1000,
  processes: 2,
  window: 16,
};
const QUICK: Partial<WsOptions> = { rounds: 1, durationSec: 3, warmupSec: 1, bigRoom: 200, idle: 1000, connects: 500, smallConnections: 500, smallRate: 200 };

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const REPORT = join(ROOT, 'BENCHMARKS.md');

class UsageError extends Error {}

function parseArgs(argv: string[]): { ids: string[]; opts: WsOptions; write: boolean; defaults: boolean; cpuProf: boolean } {
  const ids: string[] = [];
  let opts: WsOptions = { ...DEFAULTS };
  const custom: Partial<WsOptions> = {};
  let write = true;
  const flags: Record<string, keyof WsOptions> = {
    '--rounds': 'rounds',
    '--duration': 'durationSec',
    '--warmup': 'warmupSec',
    '--clients': 'bigRoom',
    '--idle': 'idle',
    '--connects': 'connects',
    '--small-connections': 'smallConnections',
    '--small-rate': 'smallRate',
    '--processes': 'processes',
    '--window': 'window',
  };
  let quick = false;
  let cpuProf = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') throw new UsageError('');
    else if (a === '--quick') quick = true;
    else if (a === '--no-write') write = false;
    else if (a === '--cpu-prof') cpuProf = true;
    else if (flags[a]) {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 1) throw new UsageError(`${a}: expected an integer ≥ 1, got "${argv[i] ?? ''}"`);
      custom[flags[a]] = n;
    } else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
    else if (!SCENARIOS.some((s) => s.id === a)) throw new UsageError(`unknown scenario "${a}"`);
    else if (!ids.includes(a)) ids.push(a);
  }
  opts = { ...opts, ...(quick ? QUICK : {}), ...custom };
  const defaults = !quick && Object.keys(custom).length === 0;
  return { ids, opts, write: write && defaults && !cpuProf, defaults, cpuProf };
}

const usage = () =>
  [
    'usage: npm run bench:ws -- [scenarios...] [--quick] [--no-write] [--cpu-prof] [--rounds n] [--duration s] [--warmup s] [--clients n] [--idle n]',
    '                          [--connects n] [--small-connections n] [--small-rate n] [--processes n] [--window n]',
    '',
    'scenarios:',
    ...SCENARIOS.map((s) => `  ${s.id.padEnd(12)} ${s.title}`),
  ].join('\n');

async function main(): Promise<number> {
  let args: ReturnType<typeof parseArgs>;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message ? `bench:ws: ${err.message}\n\n` : ''}${usage()}\n`);
    return err.message ? 2 : 0;
  }
  installCleanupHandlers();
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const m = machine();
  const load = loadAverage();
  log(`machine: ${describeMachine(m)}`);
  log(`load average: ${load.map((x) => x.toFixed(2)).join(', ')}${load[0] > m.cores * 0.75 ? '  <- the machine is busy; the figures will be distorted' : ''}`);
  if (!args.write) log('BENCHMARKS.md will not be written (non-default protocol or --no-write)');
  const argv = process.argv.slice(2);
  const command = `npm run bench:ws${argv.length ? ` -- ${argv.map(shellQuote).join(' ')}` : ''}`;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const resultsDir = join(ROOT, 'bench', '.results', `${stamp}-ws`);
  mkdirSync(resultsDir, { recursive: true });
  const profileDir = join(resultsDir, 'profile');
  const parleyFlags = args.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const ctx: WsContext = { root: ROOT, resultsDir, command, machine: m, opts: args.opts, defaults: args.defaults, log, env: new SharedEnv(ROOT, args.opts.processes, log, parleyFlags) };
  const selected = args.ids.length ? SCENARIOS.filter((s) => args.ids.includes(s.id)) : SCENARIOS;
  let failed = 0;
  for (const s of selected) {
    log(`\n== ws-${s.id}: ${s.title}`);
    let outcome: BenchOutcome;
    try {
      outcome = await s.run(ctx);
    } catch (err) {
      failed++;
      if (interrupted()) break;
      process.stderr.write(`bench:ws: ${s.id} FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      continue;
    }
    if (outcome.status === 'failed') failed++;
    log(`\n${outcome.summary}`);
    writeFileSync(join(resultsDir, `ws-${s.id}.md`), outcome.markdown);
    if (args.write) {
      writeWsSection(REPORT, s.id, outcome.markdown);
      log(`wrote its section of ${REPORT} (copy in ${resultsDir})`);
    } else log(`its section: ${join(resultsDir, `ws-${s.id}.md`)}`);
  }
  if (args.cpuProf) {
    // The profile is written when the shared Parley exits.
    await ctx.env.stopParley();
    const file = existsSync(profileDir) ? readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile')) : undefined;
    log(file ? `\n--- CPU profile of the shared Parley ---\n${formatSummary(summarizeProfile(join(profileDir, file), ROOT, 40))}` : 'no CPU profile was written (did a scenario use the shared Parley?)');
  }
  return failed ? 1 : 0;
}

main()
  .then(async (code) => {
    await cleanup();
    process.exit(code);
  })
  .catch(async (err: unknown) => {
    process.stderr.write(`bench:ws: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    await cleanup();
    process.exit(1);
  });
