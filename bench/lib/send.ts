/**
 * Benchmark "send": authenticated `POST /api/v1/channels/:id/messages` (validated, persisted) on
 * Parley against a bare Fastify POST route answering 201 with the same JSON (bench/bare-server.ts),
 * on SQLite and, when PostgreSQL is installed, on a throwaway PostgreSQL server as well.
 * Goal (issue): Parley on SQLite ≥ 0.45× the bare route's requests per second at 50 connections;
 * PostgreSQL is reported beside it. After the load, the messages stored must cover every 2xx answer.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import Sqlite from 'better-sqlite3';
import pg from 'pg';
import { type Benchmark, type BenchContext, type BenchOutcome, fmtMs, fmtPct, fmtRps, median } from './benchmark.ts';
import { formatSummary, summarizeProfile } from './cpuprofile.ts';
import type { LoadOptions } from './load.ts';
import { startPostgres } from './postgres.ts';
import { codeVersion, cpuSnapshot, describeMachine, foreignCpuShare, loadAverage } from './machine.ts';
import { type LoadRunRow, loadRunTable, table } from './markdown.ts';
import { baseEnv, HOST, login, npmStartArgs } from './parley.ts';
import { freePort, makeTempDir, type Service, startService, waitForHttp } from './proc.ts';

const GOAL = 0.45;
const ROUTE = '/api/v1/channels/:id/messages';
const CHANNEL = 'bench-send';
const TEXT = 'hello from the send benchmark';
const BODY = JSON.stringify({ body: TEXT });
const PG_DATABASE = 'parley_bench';

type Engine = 'sqlite' | 'postgres';
type Target = 'bare' | Engine;
interface Run extends LoadRunRow {
  target: Target;
}
const NAMES: Record<Target, string> = { bare: 'bare Fastify', sqlite: 'Parley, SQLite', postgres: 'Parley, PostgreSQL' };

/** One Parley under test and the channel its load posts into. */
interface Subject {
  engine: Engine;
  parley: Service;
  base: string;
  token: string;
  channelId: string;
  /** Parley's answer to the first message (before the load). */
  sample: string;
  seqBefore: number;
  rowsBefore: number;
  /** Rows of the channel in the messages table, read from the database itself, not through Parley. */
  countRows(): Promise<number>;
}

/** What the check after the load found for one engine. */
interface Persistence {
  engine: Engine;
  ok2xx: number;
  bySeq: number;
  byRows: number;
  failure: string | undefined;
}

function parleyEnv(port: number, dataDir: string, databaseUrl: string): Record<string, string> {
  return {
    PORT: String(port),
    HOST,
    DATA_DIR: dataDir,
    DATABASE_URL: databaseUrl,
    SEED_DEMO: 'true',
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    METRICS_ENABLED: 'false',
    JWT_SECRET: randomBytes(36).toString('base64url'), // 48 characters
    RATE_LIMIT_MAX: '1000000000',
    SEND_RATE_LIMIT_MAX: '0',
    ACCESS_TOKEN_TTL_SECONDS: '3600',
    DOTENV_CONFIG_PATH: join(dataDir, 'no-such.env'), // a developer's .env must not change what is measured
  };
}

const SHOWN_ENV =
  `PORT=<free port> HOST=127.0.0.1 DATA_DIR=<temp dir> DATABASE_URL=<temp dir>/bench.db|postgres://postgres@127.0.0.1:<port>/${PG_DATABASE} SEED_DEMO=true ` +
  'NODE_ENV=development LOG_LEVEL=warn METRICS_ENABLED=false JWT_SECRET=<random, 48 chars> RATE_LIMIT_MAX=1000000000 SEND_RATE_LIMIT_MAX=0 ' +
  'ACCESS_TOKEN_TTL_SECONDS=3600 DOTENV_CONFIG_PATH=<missing file>';

/** A request with the token; the answer's text when its status is `status`, else throws. */
async function call(method: 'GET' | 'POST', url: string, token: string, status: number, body?: string): Promise<string> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) };
  const res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  if (res.status !== status) throw new Error(`${method} ${url} answered ${res.status} (expected ${status}): ${text}`);
  return text;
}

const lastSeq = async (s: { base: string; token: string; channelId: string }): Promise<number> =>
  (JSON.parse(await call('GET', `${s.base}/api/v1/channels/${s.channelId}`, s.token, 200)) as { last_seq: number }).last_seq;

/** Starts Parley as `npm start` does, logs in as agent1, creates the channel and sends one message. */
async function startSubject(ctx: BenchContext, engine: Engine, databaseUrl: string, dataDir: string, count: (channelId: string) => Promise<number>): Promise<Subject> {
  const port = await freePort();
  ctx.log(`starting Parley on ${engine} on ${HOST}:${port}`);
  // --cpu-prof: each Parley writes a V8 profile on exit, summarized after its check (the figures are then not written).
  const profiling = ctx.cpuProfile ? ['--cpu-prof', `--cpu-prof-dir=${join(ctx.resultsDir, `profile-${engine}`)}`] : [];
  const parley = startService(`parley (${engine})`, process.execPath, [...profiling, ...npmStartArgs(ctx.root)], {
    cwd: ctx.root,
    env: { ...baseEnv(), ...parleyEnv(port, dataDir, databaseUrl) },
  });
  const base = `http://${HOST}:${port}`;
  await waitForHttp(parley, `${base}/health`, 120_000);
  const token = await login(base);
  const channel = JSON.parse(await call('POST', `${base}/api/v1/channels`, token, 201, JSON.stringify({ name: CHANNEL }))) as { id?: unknown };
  if (typeof channel.id !== 'string') throw new Error(`POST /api/v1/channels: no id in the answer: ${JSON.stringify(channel)}`);
  const channelId = channel.id;
  const sample = await call('POST', `${base}/api/v1/channels/${channelId}/messages`, token, 201, BODY);
  const subject = { engine, parley, base, token, channelId, sample, countRows: () => count(channelId) };
  return { ...subject, seqBefore: await lastSeq(subject), rowsBefore: await subject.countRows() };
}

function sqliteRows(file: string): (channelId: string) => Promise<number> {
  return async (channelId) => {
    const db = new Sqlite(file, { readonly: true, fileMustExist: true });
    try {
      return (db.prepare('select count(*) as n from messages where conversation_id = ?').get(channelId) as { n: number }).n;
    } finally {
      db.close();
    }
  };
}

function pgRows(url: string): (channelId: string) => Promise<number> {
  return async (channelId) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<{ n: number }>('select count(*)::int as n from messages where conversation_id = $1', [channelId])).rows[0]!.n;
    } finally {
      await client.end();
    }
  };
}

/** Starts the bare server answering Parley's first answer with 201, and checks that it does (equal JSON). */
async function startBare(ctx: BenchContext, sqlite: Subject, dir: string): Promise<{ bare: Service; url: string }> {
  const bodyFile = join(dir, 'send-answer.json');
  writeFileSync(bodyFile, sqlite.sample);
  const port = await freePort();
  ctx.log(`starting the bare Fastify server on ${HOST}:${port}`);
  const bare = startService('bare-server', process.execPath, ['--import', 'tsx', 'bench/bare-server.ts'], {
    cwd: ctx.root,
    env: { ...baseEnv(), BENCH_BARE_PORT: String(port), BENCH_BARE_HOST: HOST, BENCH_BARE_PATH: ROUTE, BENCH_BARE_BODY_FILE: bodyFile, BENCH_BARE_METHOD: 'POST', BENCH_BARE_STATUS: '201' },
  });
  // Same path as Parley's, channel id included; the bare route ignores it.
  const url = `http://${HOST}:${port}/api/v1/channels/${sqlite.channelId}/messages`;
  const deadline = Date.now() + 60_000;
  let answer: string | undefined;
  while (answer === undefined) {
    const dead = bare.exitReason();
    if (dead) throw new Error(`bare-server ${dead}\n--- its output ---\n${bare.output()}`);
    try {
      answer = await call('POST', url, sqlite.token, 201, BODY);
    } catch (err) {
      if (Date.now() > deadline) throw err; // else: not listening yet
      await sleep(150);
    }
  }
  if (!isDeepStrictEqual(JSON.parse(answer), JSON.parse(sqlite.sample))) throw new Error(`the bare server answers a different JSON:\n${answer}\nParley:\n${sqlite.sample}`);
  return { bare, url };
}

/** After the load: the stored messages (seq and rows) must cover every 2xx answer the load tool counted. */
async function checkPersistence(ctx: BenchContext, s: Subject, runs: Run[], connections: number): Promise<Persistence> {
  const mine = runs.filter((r) => r.target === s.engine);
  const ok2xx = mine.reduce((n, r) => n + r.result.requests - r.result.non2xx, 0);
  // At most one request per connection is still in flight when a run ends; more messages than that means duplicates.
  const sentAtMost = mine.reduce((n, r) => n + r.result.requests, 0) + connections * mine.length;
  const seq = await lastSeq(s);
  const page = JSON.parse(await call('GET', `${s.base}/api/v1/channels/${s.channelId}/messages?limit=1`, s.token, 200)) as { data: { seq: number; body: string }[] };
  await s.parley.stop(); // the row count is read with Parley stopped: nothing in flight any more
  if (ctx.cpuProfile) {
    const dir = join(ctx.resultsDir, `profile-${s.engine}`);
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (file) ctx.log(`--- CPU profile of Parley on ${s.engine} ---\n${formatSummary(summarizeProfile(join(dir, file), ctx.root, 40))}`);
  }
  const rows = await s.countRows();
  const bySeq = seq - s.seqBefore;
  const byRows = rows - s.rowsBefore;
  const problems = [
    ...(page.data[0]?.seq === seq && page.data[0].body === TEXT ? [] : [`the latest message is not seq ${seq} with the benchmark's text: ${JSON.stringify(page.data[0])}`]),
    ...(bySeq === byRows ? [] : [`last_seq grew by ${bySeq} but the messages table by ${byRows} rows`]),
    ...(Math.min(bySeq, byRows) >= ok2xx ? [] : [`${Math.min(bySeq, byRows)} messages stored for ${ok2xx} 2xx answers`]),
    ...(Math.max(bySeq, byRows) <= sentAtMost ? [] : [`${Math.max(bySeq, byRows)} messages stored, but at most ${sentAtMost} requests were sent`]),
  ];
  return { engine: s.engine, ok2xx, bySeq, byRows, failure: problems.length ? problems.join('; ') : undefined };
}

async function run(ctx: BenchContext): Promise<BenchOutcome> {
  const { root, tool, protocol: p } = ctx;
  const started = new Date();
  const code = codeVersion(root);
  const loadBefore = loadAverage();

  const postgres = await startPostgres(ctx, PG_DATABASE);
  if ('missing' in postgres) ctx.log(`\n!!! PostgreSQL will NOT be measured: ${postgres.missing}\n`);
  const sqliteDir = makeTempDir('parley-bench-send-');
  const subjects: Subject[] = [await startSubject(ctx, 'sqlite', join(sqliteDir, 'bench.db'), sqliteDir, sqliteRows(join(sqliteDir, 'bench.db')))];
  if ('url' in postgres) subjects.push(await startSubject(ctx, 'postgres', postgres.url, makeTempDir('parley-bench-send-pg-'), pgRows(postgres.url)));
  const { bare, url: bareUrl } = await startBare(ctx, subjects[0]!, sqliteDir);

  const targets: Target[] = ['bare', ...subjects.map((s) => s.engine)];
  const load = (t: Target, durationSec: number): LoadOptions => {
    const s = subjects.find((x) => x.engine === t) ?? subjects[0]!; // the bare route gets the SQLite token
    const url = t === 'bare' ? bareUrl : `${s.base}/api/v1/channels/${s.channelId}/messages`;
    return { url, connections: p.connections, durationSec, method: 'POST', body: BODY, headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': 'application/json' } };
  };
  const services = [bare, ...subjects.map((s) => s.parley)];
  const once = async (target: Target, label: string, durationSec: number): Promise<Run> => {
    for (const s of services) {
      const dead = s.exitReason();
      if (dead) throw new Error(`${s.name} ${dead}\n--- its output ---\n${s.output()}`);
    }
    const before = cpuSnapshot(services.map((s) => s.pid));
    const result = await tool.run(load(target, durationSec));
    const after = cpuSnapshot(services.map((s) => s.pid));
    writeFileSync(join(ctx.resultsDir, `${label.replace(/\W+/g, '-')}-${target}.txt`), result.raw);
    const r: Run = { label, target, result, foreignCpu: foreignCpuShare(before, after) };
    ctx.log(
      `${label.padEnd(8)} ${target.padEnd(8)} ${fmtRps(result.rps).padStart(7)} req/s  p50 ${fmtMs(result.latencyMs.p50)}  p99 ${fmtMs(result.latencyMs.p99)}` +
        `  non-2xx ${result.non2xx}  socket errors ${result.socketErrors}  other CPU ${fmtPct(r.foreignCpu)}`,
    );
    await sleep(1000); // let the server finish closing the connections (and the last sends) before the next run
    return r;
  };

  ctx.log(`load tool: ${tool.name} ${tool.version}: ${tool.describe(load('sqlite', p.durationSec))}`);
  const warmups: Run[] = [];
  const runs: Run[] = [];
  for (const t of targets) warmups.push(await once(t, 'warm-up', p.warmupSec));
  for (let i = 1; i <= p.rounds; i++) for (const t of targets) runs.push(await once(t, `round ${i}`, p.durationSec));
  await bare.stop();
  const persistence: Persistence[] = [];
  for (const s of subjects) persistence.push(await checkPersistence(ctx, s, [...warmups, ...runs], p.connections));
  return report(ctx, { started, code, loadBefore, postgres, targets, warmups, runs, persistence });
}

interface Measured {
  started: Date;
  code: string;
  loadBefore: number[];
  postgres: { version: string } | { missing: string };
  targets: Target[];
  warmups: Run[];
  runs: Run[];
  persistence: Persistence[];
}

function report(ctx: BenchContext, m: Measured): BenchOutcome {
  const { tool, protocol: p } = ctx;
  const of = (t: Target) => m.runs.filter((r) => r.target === t).map((r) => r.result);
  const fig = (t: Target) => ({ rps: median(of(t).map((r) => r.rps)), p50: median(of(t).map((r) => r.latencyMs.p50)), p99: median(of(t).map((r) => r.latencyMs.p99)) });
  const f = Object.fromEntries(m.targets.map((t) => [t, fig(t)])) as Record<Target, ReturnType<typeof fig>>;
  const ratio = (t: Engine) => f[t].rps / f.bare.rps;
  const bad = [...m.warmups, ...m.runs].filter((r) => r.result.non2xx > 0 || r.result.socketErrors > 0);
  const failures = [
    ...bad.map((r) => `${r.label} ${r.target}: ${r.result.non2xx} non-2xx responses, ${r.result.socketErrors} socket errors`),
    ...m.persistence.filter((x) => x.failure).map((x) => `${x.engine} persistence: ${x.failure}`),
    ...(m.runs.length ? [] : ['no measured round']),
  ];
  const failure = failures.length ? failures.join('; ') : undefined;
  const status: BenchOutcome['status'] = failure ? 'failed' : ratio('sqlite') >= GOAL ? 'met' : 'not met';
  const verdict = status === 'failed' ? `**FAILED** (${failure})` : status === 'met' ? '**met**' : '**not met**';
  const pgLine = 'missing' in m.postgres ? `PostgreSQL: **NOT MEASURED — ${m.postgres.missing}**.` : `Parley on PostgreSQL ${m.postgres.version}: ${fmtRps(f.postgres.rps)} req/s = **${ratio('postgres').toFixed(2)}×** bare (reported; the goal is set on SQLite).`;
  const engines = m.targets.filter((t): t is Engine => t !== 'bare');

  const summary = [
    `send: ${tool.name}, ${p.connections} connections, ${p.rounds} × ${p.durationSec} s per target (medians)`,
    ...m.targets.map((t) => `  ${(NAMES[t] + ':').padEnd(20)} ${fmtRps(f[t].rps)} req/s, p50 ${fmtMs(f[t].p50)}, p99 ${fmtMs(f[t].p99)}${t === 'bare' ? '' : `  = ${ratio(t).toFixed(2)}× bare`}`),
    ...m.persistence.map((x) => `  stored (${x.engine}): ${x.bySeq} messages by last_seq, ${x.byRows} rows, for ${x.ok2xx} 2xx answers: ${x.failure ? `MISMATCH (${x.failure})` : 'ok'}`),
    ...('missing' in m.postgres ? [`  !!! PostgreSQL NOT MEASURED: ${m.postgres.missing}`] : []),
    `  ratio Parley on SQLite / bare: ${ratio('sqlite').toFixed(2)}× (goal ≥ ${GOAL}×): ${status.toUpperCase()}${failure ? ` (${failure})` : ''}`,
  ].join('\n');
  return { status, summary, markdown: markdown(ctx, m, { f, ratio, verdict, pgLine, engines }) };
}

function markdown(
  ctx: BenchContext,
  m: Measured,
  r: { f: Record<Target, { rps: number; p50: number; p99: number }>; ratio: (t: Engine) => number; verdict: string; pgLine: string; engines: Engine[] },
): string {
  const { tool, protocol: p, root } = ctx;
  const { f, ratio, engines } = r;
  const rel = (t: Engine, k: 'rps' | 'p50' | 'p99') => `${(f[t][k] / f.bare[k]).toFixed(2)}×`;
  const row = (name: string, k: 'rps' | 'p50' | 'p99', fmt: (n: number) => string) => [name, fmt(f.bare[k]), ...engines.flatMap((t) => [fmt(f[t][k]), rel(t, k)])];
  const maxForeign = Math.max(...m.runs.filter((x) => x.target !== 'postgres').map((x) => x.foreignCpu ?? 0));
  const avg = (l: number[]) => l.map((x) => x.toFixed(2)).join(', ');
  const pgSetup =
    'missing' in m.postgres
      ? `- **PostgreSQL was not measured**: ${m.postgres.missing}. Install it (e.g. \`apt-get install postgresql\`) and run the benchmark again.`
      : `- **PostgreSQL ${m.postgres.version}**: a throwaway server started the way the tests start one (\`test/helpers/pg-server.ts\`: a fresh cluster in a temp dir, 127.0.0.1 only, run as the \`postgres\` OS user when root, **\`fsync=off synchronous_commit=off full_page_writes=off\`**, so commits do not wait for the disk — a production server with durability on would do fewer writes per second), an empty database \`${PG_DATABASE}\`; Parley migrates it and seeds the demo data at start, and talks to it through its default pool of 10 connections. In the PostgreSQL rows, "other CPU" includes the PostgreSQL server's own processes.`;
  return `## Send: POST /api/v1/channels/:id/messages vs bare Fastify (SQLite and PostgreSQL)

Goal (issue): authenticated, validated and persisted \`POST ${ROUTE}\` at ${p.connections} connections reaches
**≥ ${GOAL}×** the requests per second of a bare Fastify \`POST\` route answering 201 with the same JSON, on
SQLite; PostgreSQL is reported too. Same run, same load tool.

Result: Parley on SQLite ${fmtRps(f.sqlite.rps)} req/s vs bare ${fmtRps(f.bare.rps)} req/s = **${ratio('sqlite').toFixed(2)}×** — goal ${r.verdict}.
${r.pgLine}

${table(
  [`median of ${p.rounds} rounds`, 'bare Fastify', ...engines.flatMap((t) => [NAMES[t], `${t === 'sqlite' ? 'SQLite' : 'PostgreSQL'} / bare`])],
  [row('requests/s', 'rps', fmtRps), row('p50 latency', 'p50', fmtMs), row('p99 latency', 'p99', fmtMs)],
  ['l', 'r', ...engines.flatMap(() => ['r', 'r'] as const)],
)}

Persistence, checked after the load (warm-up and rounds together): the channel's \`last_seq\` (through the API) and
its rows in the \`messages\` table (read from the database with Parley stopped) must each have grown by at least the
number of 2xx answers the load tool counted. A few more are expected: requests still in flight when a run ended,
at most one per connection and run; more than that would mean duplicates and fails the check too.

${table(
  ['engine', '2xx answers counted', 'stored, by last_seq', 'stored, rows', 'check'],
  m.persistence.map((x) => [x.engine, x.ok2xx.toLocaleString('en-US'), x.bySeq.toLocaleString('en-US'), x.byRows.toLocaleString('en-US'), x.failure ? `**MISMATCH**: ${x.failure}` : 'ok']),
  ['l', 'r', 'r', 'r', 'l'],
)}

- Date: ${m.started.toISOString().replace(/\.\d+Z$/, 'Z')}
- Code: commit ${m.code}
- Machine: ${describeMachine(ctx.machine)}
- Load average (1, 5, 15 min) before the run: ${avg(m.loadBefore)}; busiest measured bare/SQLite run had ${fmtPct(maxForeign)} of the machine's CPU used by other processes ("other CPU" below, from /proc)
- Command: \`${ctx.command}\`${ctx.command === 'npm run bench' ? ' (runs every benchmark; this one alone: `npm run bench -- send`)' : ''}
- Load tool: ${tool.name} ${tool.version}, one run per line below:
  \`${tool.describe({ url: `http://127.0.0.1:<port>/api/v1/channels/<channel id>/messages`, connections: p.connections, durationSec: p.durationSec, method: 'POST', body: BODY, headers: { Authorization: 'Bearer <token>', 'Content-Type': 'application/json' } })}\`
- Protocol: warm-up ${p.warmupSec} s per target (not counted), then ${p.rounds} rounds of ${p.durationSec} s alternating ${m.targets.map((t) => NAMES[t]).join(', ')}; medians over the rounds. Every response must be 2xx and no socket error may occur, and the persistence check must pass, else the benchmark is marked failed.

${loadRunTable('target', [...m.warmups, ...m.runs], (x) => NAMES[x.target])}

How it is set up:

- **Parley** runs as its own process per database, started exactly as \`npm start\` does (\`${npmStartArgs(root).join(' ')}\` after \`node\`), demo data seeded. Before the load it logs in as \`agent1\`, creates the public channel \`${CHANNEL}\` (\`POST /api/v1/channels\`; agent1 becomes its owner) and sends one message to get Parley's answer. Every request of the load is then \`POST /api/v1/channels/<that channel>/messages\` with \`Authorization: Bearer <agent1's token>\`, \`Content-Type: application/json\` and the body \`${BODY}\`: each one is authenticated, validated, checked for access, given the next seq and written (one new message per request, no \`client_msg_id\`). Environment: \`${SHOWN_ENV}\`.
  - \`LOG_LEVEL=warn\`: at the default \`info\`, Parley writes one log line per request, and that logging would dominate the measurement.
  - \`RATE_LIMIT_MAX=1000000000\`: the per-IP rate limiter stays **on** (its cost is measured) at a limit never reached; \`SEND_RATE_LIMIT_MAX=0\`: the per-user send limit is **off** (one user sends all the messages).
  - \`METRICS_ENABLED=false\`: no Prometheus listener (the request-metrics hook itself is always registered by the app).
- **SQLite**: a fresh file in a temp dir (\`journal_mode=WAL\`, \`synchronous=NORMAL\`, as Parley sets them); the table grows by every message of every run.
${pgSetup}
- **Bare Fastify** (\`bench/bare-server.ts\` with \`BENCH_BARE_METHOD=POST BENCH_BARE_STATUS=201\`) is its own process too: \`Fastify({ logger: false })\` with one \`POST ${ROUTE}\` route answering 201 with the JSON object Parley answered for the first message (checked equal), no plugins, no hooks, no schema; Fastify's built-in JSON parser reads each body. It gets the same request (path shape, headers, body) as Parley.
- Same host (127.0.0.1), same load tool and parameters, in the same run. Each server is one Node process (one main JS thread)${tool.name === 'wrk' ? '; with `-t1` wrk uses one thread, so on a 2-core machine load tool and server each get about one core (PostgreSQL shares them too)' : ''}.
`;
}

export const send: Benchmark = { id: 'send', title: 'Send a message: POST /api/v1/channels/:id/messages vs bare Fastify (SQLite, PostgreSQL)', run };
