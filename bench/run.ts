/**
 * Parley benchmarks — `npm run bench` (`tsx bench/run.ts [ids...] [options]`).
 *
 * Runs every benchmark of BENCHMARKS below (or only the ids given), prints a summary of each and
 * rewrites each one's section of BENCHMARKS.md. Servers run as child processes; the load tool is
 * wrk when installed, else autocannon (BENCH_TOOL=wrk|autocannon forces one).
 *
 *   npm run bench                       all benchmarks, results into BENCHMARKS.md
 *   npm run bench -- users-me           one benchmark
 *   npm run bench -- --cpu-prof users-me
 *       profile the server under test with `node --cpu-prof` and print its top self-time functions;
 *       BENCHMARKS.md is not written (profiling slows the server down)
 *   --duration <s> --rounds <n> --warmup <s>   other protocol (BENCHMARKS.md is then not written)
 *   --no-write                          do not touch BENCHMARKS.md
 *   BENCH_SKIP_POSTGRES=1               the send and inbound benchmarks measure SQLite only
 *
 * Exit status: 0 when every benchmark measured (goal met or not), 1 when one failed (errors,
 * non-2xx answers, a server that would not start), 2 on bad arguments.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Benchmark, BenchOutcome, Protocol } from './lib/benchmark.ts';
import { pickLoadTool } from './lib/load.ts';
import { describeMachine, loadAverage, machine } from './lib/machine.ts';
import { writeSection } from './lib/markdown.ts';
import { cleanup, installCleanupHandlers, interrupted, shellQuote } from './lib/proc.ts';
import { history } from './lib/history.ts';
import { inbound } from './lib/inbound.ts';
import { relay } from './lib/relay.ts';
import { search } from './lib/search.ts';
import { send } from './lib/send.ts';
import { usersMe } from './lib/users-me.ts';

/** Every benchmark, in the order `npm run bench` runs them. Add new ones here. */
const BENCHMARKS: Benchmark[] = [usersMe, history, search, send, inbound, relay];

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REPORT = join(ROOT, 'BENCHMARKS.md');
const DEFAULT_PROTOCOL: Protocol = { connections: 50, warmupSec: 3, durationSec: 10, rounds: 5 };

function usage(): string {
  return [
    'usage: npm run bench -- [ids...] [--cpu-prof] [--no-write] [--duration s] [--rounds n] [--warmup s]',
    '',
    'benchmarks:',
    ...BENCHMARKS.map((b) => `  ${b.id.padEnd(12)} ${b.title}`),
  ].join('\n');
}

interface Args {
  ids: string[];
  cpuProfile: boolean;
  write: boolean;
  protocol: Protocol;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { ids: [], cpuProfile: false, write: true, protocol: { ...DEFAULT_PROTOCOL } };
  let custom = false;
  const num = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag}: expected an integer ≥ ${min}, got "${v ?? ''}"`);
    custom = true;
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') throw new UsageError('');
    else if (a === '--cpu-prof') args.cpuProfile = true;
    else if (a === '--no-write') args.write = false;
    else if (a === '--duration') args.protocol.durationSec = num(a, argv[++i], 1);
    else if (a === '--rounds') args.protocol.rounds = num(a, argv[++i], 1);
    else if (a === '--warmup') args.protocol.warmupSec = num(a, argv[++i], 1);
    else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
    else if (!BENCHMARKS.some((b) => b.id === a)) throw new UsageError(`unknown benchmark "${a}"`);
    else if (!args.ids.includes(a)) args.ids.push(a);
  }
  if (args.cpuProfile || custom) args.write = false;
  return args;
}

class UsageError extends Error {}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message ? `bench: ${err.message}\n\n` : ''}${usage()}\n`);
    return err.message ? 2 : 0;
  }
  installCleanupHandlers();
  const selected = args.ids.length ? BENCHMARKS.filter((b) => args.ids.includes(b.id)) : BENCHMARKS;
  const tool = pickLoadTool(ROOT);
  const m = machine();
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const load = loadAverage();
  log(`machine: ${describeMachine(m)}`);
  log(`load tool: ${tool.name} ${tool.version}${tool.name === 'wrk' ? '' : ' (wrk not found on PATH, using autocannon)'}`);
  log(`load average: ${load.map((x) => x.toFixed(2)).join(', ')}${load[0] > m.cores * 0.75 ? '  <- the machine is busy; the figures will be distorted' : ''}`);
  if (!args.write) log(`BENCHMARKS.md will not be written (${args.cpuProfile ? '--cpu-prof' : 'non-default protocol or --no-write'})`);

  const argv = process.argv.slice(2);
  const command = `npm run bench${argv.length ? ` -- ${argv.map(shellQuote).join(' ')}` : ''}`;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  let failed = 0;
  for (const bench of selected) {
    log(`\n== ${bench.id}: ${bench.title}`);
    const resultsDir = join(ROOT, 'bench', '.results', `${stamp}-${bench.id}`);
    mkdirSync(resultsDir, { recursive: true });
    let outcome: BenchOutcome;
    try {
      outcome = await bench.run({ root: ROOT, tool, machine: m, protocol: args.protocol, resultsDir, cpuProfile: args.cpuProfile, command, log });
    } catch (err) {
      failed++;
      if (interrupted()) break;
      process.stderr.write(`bench: ${bench.id} FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      continue;
    } finally {
      await cleanup(); // stop this benchmark's servers and remove its temp files before the next one
    }
    if (outcome.status === 'failed') failed++;
    log(`\n${outcome.summary}`);
    log(`raw outputs: ${resultsDir}`);
    if (args.write) {
      writeSection(REPORT, bench.id, outcome.markdown);
      log(`wrote its section of ${REPORT}`);
    }
  }
  return failed ? 1 : 0;
}

main()
  .then(async (code) => {
    await cleanup();
    process.exit(code);
  })
  .catch(async (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    await cleanup();
    process.exit(1);
  });
