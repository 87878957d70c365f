/**
 * Benchmark "users-me": authenticated `GET /api/v1/users/me` on Parley against a bare Fastify
 * route returning the same JSON (bench/bare-server.ts), same load tool, same run.
 * Goal (issue): Parley ≥ 0.6× the bare route's requests per second at 50 connections.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { type Benchmark, type BenchContext, type BenchOutcome, fmtMs, fmtPct, fmtRps, median } from './benchmark.ts';
import { formatSummary, summarizeProfile } from './cpuprofile.ts';
import type { LoadResult } from './load.ts';
import { codeVersion, cpuSnapshot, describeMachine, foreignCpuShare, loadAverage } from './machine.ts';
import { loadRunTable, table } from './markdown.ts';
import { baseEnv, getBody, HOST, login, npmStartArgs } from './parley.ts';
import { freePort, makeTempDir, startService, waitForHttp } from './proc.ts';

const GOAL = 0.6;
const PATH = '/api/v1/users/me';

type Target = 'bare' | 'parley';
interface Run {
  label: string;
  target: Target;
  result: LoadResult;
  foreignCpu: number | null;
}

/** Parley's environment for the run (also printed in BENCHMARKS.md, with the secret hidden). */
function parleyEnv(port: number, tmp: string): Record<string, string> {
  return {
    PORT: String(port),
    HOST,
    DATA_DIR: tmp,
    DATABASE_URL: join(tmp, 'bench.db'),
    SEED_DEMO: 'true',
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    METRICS_ENABLED: 'false',
    JWT_SECRET: randomBytes(36).toString('base64url'), // 48 characters
    RATE_LIMIT_MAX: '1000000000',
    ACCESS_TOKEN_TTL_SECONDS: '3600',
    // A developer's .env must not change what is measured: point dotenv at a file that does not exist.
    DOTENV_CONFIG_PATH: join(tmp, 'no-such.env'),
  };
}

const SHOWN_ENV = [
  'PORT=<free port>',
  'HOST=127.0.0.1',
  'DATA_DIR=<temp dir>',
  'DATABASE_URL=<temp dir>/bench.db',
  'SEED_DEMO=true',
  'NODE_ENV=development',
  'LOG_LEVEL=warn',
  'METRICS_ENABLED=false',
  'JWT_SECRET=<random, 48 chars>',
  'RATE_LIMIT_MAX=1000000000',
  'ACCESS_TOKEN_TTL_SECONDS=3600',
  'DOTENV_CONFIG_PATH=<missing file>',
];

/** The main thread's profile: CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile with thread id 0 (1 is tsx's loader worker). */
function findProfile(dir: string): string | undefined {
  try {
    const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
    const main = files.filter((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f));
    const pick = (main.length ? main : files).sort().at(-1);
    return pick ? join(dir, pick) : undefined;
  } catch {
    return undefined;
  }
}

async function run(ctx: BenchContext): Promise<BenchOutcome> {
  const { root, tool, protocol: p } = ctx;
  const started = new Date();
  const code = codeVersion(root);
  const loadBefore = loadAverage();
  const tmp = makeTempDir('parley-bench-users-me-');
  const profileDir = join(ctx.resultsDir, 'cpuprofile');

  // Parley exactly as `npm start` runs it (the node flags and entry of package.json's start script),
  // started here directly so that profiling flags can be added.
  const parleyPort = await freePort();
  const nodeFlags = ctx.cpuProfile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  if (ctx.cpuProfile) mkdirSync(profileDir, { recursive: true });
  ctx.log(`starting Parley on ${HOST}:${parleyPort}${ctx.cpuProfile ? ' (with --cpu-prof)' : ''}`);
  const parley = startService('parley', process.execPath, [...nodeFlags, ...npmStartArgs(root)], {
    cwd: root,
    env: { ...baseEnv(), ...parleyEnv(parleyPort, tmp) },
  });
  const parleyBase = `http://${HOST}:${parleyPort}`;
  await waitForHttp(parley, `${parleyBase}/health`);
  const token = await login(parleyBase);
  const body = await getBody(`${parleyBase}${PATH}`, token);
  const bodyFile = join(tmp, 'users-me.json');
  writeFileSync(bodyFile, body);

  const barePort = await freePort();
  ctx.log(`starting the bare Fastify server on ${HOST}:${barePort}`);
  const bare = startService('bare-server', process.execPath, ['--import', 'tsx', 'bench/bare-server.ts'], {
    cwd: root,
    env: { ...baseEnv(), BENCH_BARE_PORT: String(barePort), BENCH_BARE_HOST: HOST, BENCH_BARE_PATH: PATH, BENCH_BARE_BODY_FILE: bodyFile },
  });
  const bareBase = `http://${HOST}:${barePort}`;
  await waitForHttp(bare, `${bareBase}${PATH}`);
  const bareBody = await getBody(`${bareBase}${PATH}`, token);
  if (!isDeepStrictEqual(JSON.parse(bareBody), JSON.parse(body))) throw new Error(`the bare server answers a different JSON:\n${bareBody}\nParley:\n${body}`);

  const urls: Record<Target, string> = { bare: `${bareBase}${PATH}`, parley: `${parleyBase}${PATH}` };
  // Both targets get the very same request, Authorization header included (the bare route ignores it).
  const headers = { Authorization: `Bearer ${token}` };
  const runs: Run[] = [];
  const once = async (target: Target, label: string, durationSec: number): Promise<Run> => {
    for (const s of [bare, parley]) {
      const dead = s.exitReason();
      if (dead) throw new Error(`${s.name} ${dead}\n--- its output ---\n${s.output()}`);
    }
    const pids = [bare.pid, parley.pid];
    const before = cpuSnapshot(pids);
    const result = await tool.run({ url: urls[target], connections: p.connections, durationSec, headers });
    const after = cpuSnapshot(pids);
    writeFileSync(join(ctx.resultsDir, `${label.replace(/\W+/g, '-')}-${target}.txt`), result.raw);
    const r: Run = { label, target, result, foreignCpu: foreignCpuShare(before, after) };
    ctx.log(
      `${label.padEnd(8)} ${target.padEnd(6)} ${fmtRps(result.rps).padStart(7)} req/s  p50 ${fmtMs(result.latencyMs.p50)}  p99 ${fmtMs(result.latencyMs.p99)}` +
        `  non-2xx ${result.non2xx}  socket errors ${result.socketErrors}  other CPU ${fmtPct(r.foreignCpu)}`,
    );
    await sleep(1000); // let the server finish closing the 50 connections before the next run
    return r;
  };

  ctx.log(`load tool: ${tool.name} ${tool.version}: ${tool.describe({ url: urls.bare, connections: p.connections, durationSec: p.durationSec, headers })}`);
  const warmups: Run[] = [];
  for (const target of ['bare', 'parley'] as const) warmups.push(await once(target, 'warm-up', p.warmupSec));
  for (let i = 1; i <= p.rounds; i++) {
    for (const target of ['bare', 'parley'] as const) runs.push(await once(target, `round ${i}`, p.durationSec));
  }

  await bare.stop();
  await parley.stop(); // SIGTERM: graceful shutdown, which also makes --cpu-prof write its profile
  let profileText = '';
  if (ctx.cpuProfile) {
    const file = findProfile(profileDir);
    profileText = file ? `CPU profile of Parley: ${file}\n${formatSummary(summarizeProfile(file, root, 30))}` : `no .cpuprofile found in ${profileDir}`;
  }

  // ---- figures
  const of = (t: Target) => runs.filter((r) => r.target === t);
  const med = (t: Target, f: (r: LoadResult) => number) => median(of(t).map((r) => f(r.result)));
  const rps = { bare: med('bare', (r) => r.rps), parley: med('parley', (r) => r.rps) };
  const p50 = { bare: med('bare', (r) => r.latencyMs.p50), parley: med('parley', (r) => r.latencyMs.p50) };
  const p99 = { bare: med('bare', (r) => r.latencyMs.p99), parley: med('parley', (r) => r.latencyMs.p99) };
  const ratio = rps.parley / rps.bare;
  const bad = [...warmups, ...runs].filter((r) => r.result.non2xx > 0 || r.result.socketErrors > 0);
  const failure = bad.length
    ? bad.map((r) => `${r.label} ${r.target}: ${r.result.non2xx} non-2xx responses, ${r.result.socketErrors} socket errors`).join('; ')
    : runs.length === 0
      ? 'no measured round'
      : undefined;
  const status: BenchOutcome['status'] = failure ? 'failed' : ratio >= GOAL ? 'met' : 'not met';
  const verdict = status === 'failed' ? `**FAILED** (${failure})` : status === 'met' ? '**met**' : '**not met**';
  const maxForeign = Math.max(...runs.map((r) => r.foreignCpu ?? 0));

  const summary = [
    `users-me: ${tool.name}, ${p.connections} connections, ${p.rounds} × ${p.durationSec} s per target (medians)`,
    `  bare Fastify: ${fmtRps(rps.bare)} req/s, p50 ${fmtMs(p50.bare)}, p99 ${fmtMs(p99.bare)}`,
    `  Parley:       ${fmtRps(rps.parley)} req/s, p50 ${fmtMs(p50.parley)}, p99 ${fmtMs(p99.parley)}`,
    `  ratio Parley/bare: ${ratio.toFixed(2)}× (goal ≥ ${GOAL}×): ${status.toUpperCase()}${failure ? ` (${failure})` : ''}`,
    ...(profileText ? ['', profileText] : []),
  ].join('\n');

  const m = ctx.machine;
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(', ');
  const markdown = `## Authenticated GET /api/v1/users/me vs bare Fastify

Goal (issue): authenticated \`GET /api/v1/users/me\` at ${p.connections} connections reaches **≥ ${GOAL}×** the
requests per second of a bare Fastify route returning the same JSON, same run, same load tool.

Result: Parley ${fmtRps(rps.parley)} req/s vs bare ${fmtRps(rps.bare)} req/s = **${ratio.toFixed(2)}×** — goal ${verdict}.

${table(
  ['median of ' + p.rounds + ' rounds', 'bare Fastify', 'Parley', 'Parley / bare'],
  [
    ['requests/s', fmtRps(rps.bare), fmtRps(rps.parley), `${ratio.toFixed(2)}×`],
    ['p50 latency', fmtMs(p50.bare), fmtMs(p50.parley), `${(p50.parley / p50.bare).toFixed(2)}×`],
    ['p99 latency', fmtMs(p99.bare), fmtMs(p99.parley), `${(p99.parley / p99.bare).toFixed(2)}×`],
  ],
  ['l', 'r', 'r', 'r'],
)}

- Date: ${started.toISOString().replace(/\.\d+Z$/, 'Z')}
- Code: commit ${code}
- Machine: ${describeMachine(m)}
- Load average (1, 5, 15 min) before the run: ${load(loadBefore)}; busiest measured run had ${fmtPct(maxForeign)} of the machine's CPU used by other processes ("other CPU" below, from /proc)
- Command: \`${ctx.command}\`${ctx.command === 'npm run bench' ? ' (runs every benchmark; this one alone: `npm run bench -- users-me`)' : ''}
- Load tool: ${tool.name} ${tool.version}, one run per line below:
  \`${tool.describe({ url: `http://127.0.0.1:<port>${PATH}`, connections: p.connections, durationSec: p.durationSec, headers })}\`
- Protocol: warm-up ${p.warmupSec} s per target (not counted), then ${p.rounds} rounds of ${p.durationSec} s alternating bare, Parley; medians over the rounds. Every response must be 2xx and no socket error may occur, else the benchmark is marked failed.

${loadRunTable('target', [...warmups, ...runs], (r) => (r.target === 'bare' ? 'bare Fastify' : 'Parley'))}

How it is set up:

- **Parley** runs as its own process, started exactly as \`npm start\` does (\`${npmStartArgs(root).join(' ')}\` after \`node\`: TypeScript through tsx's loader, a 64 MB young generation — see README), SQLite database in a temp dir, demo data seeded; the load tool logs in as \`agent1\` once and sends that access token (\`Authorization: Bearer …\`) on every request. Environment: \`${SHOWN_ENV.join(' ')}\`.
  - \`LOG_LEVEL=warn\`: at the default \`info\`, Parley writes one log line per request, and that logging would dominate the measurement.
  - \`RATE_LIMIT_MAX=1000000000\`: the per-IP rate limiter stays **on**, so its per-request cost is part of the figure, but at a limit the benchmark never reaches.
  - \`METRICS_ENABLED=false\`: no Prometheus listener (the request-metrics hook itself is always registered by the app).
  - Every request therefore goes through Parley's real stack: request id, rate limiter, helmet headers, authentication (access token, session and user checked on every request), request metrics, the \`users.me\` service, response-schema serialization.
- **Bare Fastify** (\`bench/bare-server.ts\`) is its own process too: \`Fastify({ logger: false })\` with one \`GET ${PATH}\` route returning the JSON object Parley answered for agent1 (fetched once at the start and checked equal), no plugins, no hooks, no schema.
- Same host (127.0.0.1), same request (including the Authorization header), same load tool and parameters, in the same run. Each server is one Node process (one main JS thread)${tool.name === 'wrk' ? '; with `-t1` wrk uses one thread, so on a 2-core machine load tool and server each get about one core' : ''}.
`;

  return { status, summary, markdown };
}

export const usersMe: Benchmark = { id: 'users-me', title: 'Authenticated GET /api/v1/users/me vs bare Fastify', run };
