/** The verdict, summary and BENCHMARKS.md section of the inbound benchmark (bench/lib/inbound.ts). */
import { type BenchContext, type BenchOutcome, fmtMs, fmtPct, fmtRps, median } from './benchmark.ts';
import { BARE_DELIVERIES, CONTACTS, PG_DATABASE, SETTLE_SEC, SHOWN_ENV, type Totals, WRK_SHOWN } from './inbound-data.ts';
import { describeMachine } from './machine.ts';
import { type LoadRunRow, loadRunTable, table } from './markdown.ts';
import { npmStartArgs } from './parley.ts';

const GOAL_RATIO = 0.35;
const GOAL_P99_MS = 10;

export type Engine = 'sqlite' | 'postgres';
export type Target = 'bare' | Engine;
const NAMES: Record<Target, string> = { bare: 'bare Fastify', sqlite: 'Parley, SQLite', postgres: 'Parley, PostgreSQL' };

export interface Run extends LoadRunRow {
  target: Target;
  /** Requests wrk-signed.lua made (completed or in flight at the end), and how many of them repeated an earlier delivery. */
  made: number;
  wrapped: number;
  /** The same two counts for the unmeasured load just before the run (SETTLE_SEC). */
  settle: { made: number; wrapped: number };
  /** Parley runs: the deliveries received in the run, the backlog left when the load ended, processing. */
  processing?: { events: number; backlog: number; drainMs: number; rate: number };
  /** Parley runs: how long the machine took to get quiet after the drain (waitForQuietMachine). */
  settleMs?: number;
}

export interface Measured {
  started: Date;
  code: string;
  loadBefore: number[];
  postgres: { version: string } | { missing: string };
  targets: Target[];
  warmups: Run[];
  runs: Run[];
  totals: (Totals & { engine: Engine })[];
}

/** The stored-once check of one engine: what failed, or undefined. 1 is the delivery checked before the load. */
function storedOnce(t: Totals & { engine: Engine }, runs: Run[]): string | undefined {
  const mine = runs.filter((r) => r.target === t.engine);
  const ok2xx = 1 + mine.reduce((n, r) => n + r.result.requests - r.result.non2xx, 0);
  const atMost = 1 + mine.reduce((n, r) => n + r.made + r.settle.made, 0);
  const notProcessed = Object.entries(t.byStatus).filter(([k]) => k !== 'processed');
  const problems = [
    ...(t.stored === t.distinctIds ? [] : [`${t.stored} messages stored for ${t.distinctIds} distinct message ids accepted`]),
    ...(t.storedDistinct === t.stored ? [] : [`${t.stored - t.storedDistinct} messages stored twice`]),
    ...(t.events >= ok2xx ? [] : [`${t.events} deliveries stored for ${ok2xx} 200 answers counted by wrk`]),
    ...(t.events <= atMost ? [] : [`${t.events} deliveries stored, but only ${atMost} requests were made`]),
    ...(notProcessed.length ? [`deliveries not processed: ${notProcessed.map(([k, n]) => `${n} ${k}`).join(', ')}`] : []),
    ...(t.conversations === Math.min(CONTACTS, t.distinctIds) ? [] : [`${t.conversations} conversations for ${Math.min(CONTACTS, t.distinctIds)} contacts`]),
  ];
  return problems.length ? problems.join('; ') : undefined;
}

export function report(ctx: BenchContext, m: Measured): BenchOutcome {
  const { protocol: p } = ctx;
  const of = (t: Target) => m.runs.filter((r) => r.target === t);
  const fig = (t: Target) => ({
    rps: median(of(t).map((r) => r.result.rps)),
    p50: median(of(t).map((r) => r.result.latencyMs.p50)),
    p99: median(of(t).map((r) => r.result.latencyMs.p99)),
    rate: median(of(t).map((r) => r.processing?.rate ?? NaN)),
  });
  const f = Object.fromEntries(m.targets.map((t) => [t, fig(t)])) as Record<Target, ReturnType<typeof fig>>;
  const ratio = (t: Engine) => f[t].rps / f.bare.rps;
  const all = [...m.warmups, ...m.runs];
  const checks = m.totals.map((t) => ({ t, failure: storedOnce(t, all) }));
  const failures = [
    ...all.filter((r) => r.result.non2xx > 0 || r.result.socketErrors > 0).map((r) => `${r.label} ${r.target}: ${r.result.non2xx} non-2xx responses, ${r.result.socketErrors} socket errors`),
    ...checks.filter((c) => c.failure).map((c) => `${c.t.engine} stored once: ${c.failure}`),
    ...(m.runs.length ? [] : ['no measured round']),
  ];
  const failure = failures.length ? failures.join('; ') : undefined;
  const met = ratio('sqlite') >= GOAL_RATIO && f.sqlite.p99 <= GOAL_P99_MS;
  const status: BenchOutcome['status'] = failure ? 'failed' : met ? 'met' : 'not met';
  const wrapped = (t: Engine) => all.filter((r) => r.target === t).reduce((n, r) => n + r.wrapped + r.settle.wrapped, 0);
  const engines = m.targets.filter((t): t is Engine => t !== 'bare');
  const summary = [
    `inbound: wrk, ${p.connections} connections, ${p.rounds} × ${p.durationSec} s per target (medians)`,
    ...m.targets.map((t) => `  ${(NAMES[t] + ':').padEnd(20)} ${fmtRps(f[t].rps)} accepted/s, ack p50 ${fmtMs(f[t].p50)}, p99 ${fmtMs(f[t].p99)}` + (t === 'bare' ? '' : `  = ${ratio(t).toFixed(2)}× bare; processed ${fmtRps(f[t].rate)} messages/s`)),
    ...checks.map(({ t, failure: fl }) => `  stored once (${t.engine}): ${t.stored} messages for ${t.distinctIds} distinct ids accepted in ${t.events} deliveries (${wrapped(t.engine)} wrapped repeats): ${fl ? `MISMATCH (${fl})` : 'ok'}`),
    ...('missing' in m.postgres ? [`  !!! PostgreSQL NOT MEASURED: ${m.postgres.missing}`] : []),
    `  SQLite: ${ratio('sqlite').toFixed(2)}× bare (goal ≥ ${GOAL_RATIO}×), ack p99 ${fmtMs(f.sqlite.p99)} (goal ≤ ${GOAL_P99_MS} ms): ${status.toUpperCase()}${failure ? ` (${failure})` : ''}`,
  ].join('\n');
  const verdict = status === 'failed' ? `**FAILED** (${failure})` : status === 'met' ? '**met**' : '**not met**';
  return { status, summary, markdown: markdown(ctx, m, { f, ratio, verdict, engines, checks, wrapped }) };
}

type Figures = Record<Target, { rps: number; p50: number; p99: number; rate: number }>;

function markdown(
  ctx: BenchContext,
  m: Measured,
  r: { f: Figures; ratio: (t: Engine) => number; verdict: string; engines: Engine[]; checks: { t: Totals & { engine: Engine }; failure: string | undefined }[]; wrapped: (t: Engine) => number },
): string {
  const { tool, protocol: p, root } = ctx;
  const { f, ratio, engines } = r;
  const n = (x: number) => x.toLocaleString('en-US');
  const rel = (t: Engine, k: 'rps' | 'p50' | 'p99') => `${(f[t][k] / f.bare[k]).toFixed(2)}×`;
  const row = (name: string, k: 'rps' | 'p50' | 'p99', fmt: (x: number) => string) => [name, fmt(f.bare[k]), ...engines.flatMap((t) => [fmt(f[t][k]), rel(t, k)])];
  const maxForeign = Math.max(...m.runs.filter((x) => x.target !== 'postgres').map((x) => x.foreignCpu ?? 0));
  const pgLine = 'missing' in m.postgres ? `PostgreSQL: **NOT MEASURED — ${m.postgres.missing}**.` : `Parley on PostgreSQL ${m.postgres.version}: ${fmtRps(f.postgres.rps)} accepted/s = **${ratio('postgres').toFixed(2)}×** bare, ack p99 ${fmtMs(f.postgres.p99)}, processed ${fmtRps(f.postgres.rate)} messages/s (reported; the goal is set on SQLite).`;
  const pgSetup =
    'missing' in m.postgres
      ? `- **PostgreSQL was not measured**: ${m.postgres.missing}.`
      : `- **PostgreSQL ${m.postgres.version}**: a throwaway server as the tests start one (\`test/helpers/pg-server.ts\`, 127.0.0.1 only, **\`fsync=off synchronous_commit=off full_page_writes=off\`**), an empty database \`${PG_DATABASE}\`, Parley's default pool. Its "other CPU" includes the PostgreSQL processes.`;
  const parleyRuns = [...m.warmups, ...m.runs].filter((x) => x.processing);
  return `## Inbound: signed WhatsApp webhooks vs bare Fastify (SQLite and PostgreSQL)

Goal (issue): inbound WhatsApp text webhooks (\`POST /webhooks/whatsapp/:inboxId\`, signed) from ${n(CONTACTS)} distinct
contacts at ${p.connections} connections are accepted at **≥ ${GOAL_RATIO}×** the requests per second of a bare Fastify
\`POST\` on the same path, with **ack p99 ≤ ${GOAL_P99_MS} ms**, on SQLite, and every accepted message is stored exactly
once; PostgreSQL is reported too, and the processing rate behind the acks. Same run, same load tool.

Result: Parley on SQLite ${fmtRps(f.sqlite.rps)} accepted/s vs bare ${fmtRps(f.bare.rps)} req/s = **${ratio('sqlite').toFixed(2)}×**, ack p99 ${fmtMs(f.sqlite.p99)}, processed ${fmtRps(f.sqlite.rate)} messages/s — goal ${r.verdict}.
${pgLine}

${table(
  [`median of ${p.rounds} rounds`, 'bare Fastify', ...engines.flatMap((t) => [NAMES[t], `${t === 'sqlite' ? 'SQLite' : 'PostgreSQL'} / bare`])],
  [row('accepted/s', 'rps', fmtRps), row('ack p50', 'p50', fmtMs), row('ack p99', 'p99', fmtMs), ['processed messages/s', '—', ...engines.flatMap((t) => [fmtRps(f[t].rate), ''])]],
  ['l', 'r', ...engines.flatMap(() => ['r', 'r'] as const)],
)}

Stored exactly once, checked after the load (warm-up, rounds and the unmeasured load before each, plus one delivery sent before the load)
in the database with Parley stopped: every delivery Parley acknowledged is a \`webhook_events\` row; their distinct
WhatsApp message ids (wamids) must equal the \`messages\` from contacts in the inbox's conversations, with no
external id twice, every delivery \`processed\`, one conversation per contact, and at least as many deliveries as
200 answers counted by wrk (a few more: in flight when a run ended). Repeats come only from a delivery file that
wrapped (counted below); dedupe must store them once all the same.

${table(
  ['engine', 'deliveries acknowledged', 'distinct message ids', 'wrapped repeats sent', 'messages stored', 'conversations', 'check'],
  r.checks.map(({ t, failure }) => [t.engine, n(t.events), n(t.distinctIds), n(r.wrapped(t.engine)), n(t.stored), n(t.conversations), failure ? `**MISMATCH**: ${failure}` : 'ok']),
  ['l', 'r', 'r', 'r', 'r', 'r', 'l'],
)}

- Date: ${m.started.toISOString().replace(/\.\d+Z$/, 'Z')}
- Code: commit ${m.code}
- Machine: ${describeMachine(ctx.machine)}
- Load average (1, 5, 15 min) before the run: ${m.loadBefore.map((x) => x.toFixed(2)).join(', ')}; busiest measured bare/SQLite run had ${fmtPct(maxForeign)} of the machine's CPU used by other processes
- Command: \`${ctx.command}\`${ctx.command === 'npm run bench' ? ' (runs every benchmark; this one alone: `npm run bench -- inbound`)' : ''}
- Load tool: ${tool.name} ${tool.version}, one run per line below: \`${WRK_SHOWN(p.connections, p.durationSec)}\`
- Protocol: warm-up ${p.warmupSec} s per target (not counted), then ${p.rounds} rounds of ${p.durationSec} s alternating ${m.targets.map((t) => NAMES[t]).join(', ')}; medians over the rounds. Each run (warm-up and rounds) is preceded by ${SETTLE_SEC} s of the same load on the same target that is not measured, whose deliveries are processed before the run: a Node server idle for half a minute has had its young generation shrunk by V8, and the first seconds of load after that measure the regrowth, not the steady state. After each Parley run the benchmark waits until the dispatcher has processed every stored delivery (polling \`webhook_events\`), so each run starts with no backlog, and then until the machine is quiet (under 15 % of its cores busy for two half-second samples, at most 120 s), so that work a server does after a run (PostgreSQL's autovacuum, checkpoints) cannot fall into the next run. Every response must be 2xx with no socket error, and the stored-once check must pass, else the benchmark is marked failed.

${loadRunTable('target', [...m.warmups, ...m.runs], (x) => NAMES[x.target])}

Processing behind the acks, per Parley run: deliveries received in the run, the backlog still unprocessed when the
load ended, the time to process it after the load, and the processing rate = deliveries / (last \`processed_at\` −
first \`received_at\` of the run) — one text message each, so messages stored per second from first ack to last processed.

${table(
  ['run', 'target', 'deliveries', 'wrapped repeats', 'backlog at end of load', 'drained after', 'processed/s', 'quiet after'],
  parleyRuns.map((x) => [x.label, NAMES[x.target], n(x.processing!.events), n(x.wrapped), n(x.processing!.backlog), `${(x.processing!.drainMs / 1000).toFixed(1)} s`, fmtRps(x.processing!.rate), x.settleMs === undefined ? '—' : `${(x.settleMs / 1000).toFixed(1)} s`]),
  ['l', 'l', 'r', 'r', 'r', 'r', 'r'],
)}

How it is set up:

- **Deliveries**: WhatsApp Cloud API text messages shaped like \`test/fixtures/platforms/whatsapp/text.json\`, from ${n(CONTACTS)} senders in turn (wa_id \`1555000xxxx\`), each with a new wamid. wrk's Lua cannot compute an HMAC, so before each Parley run the benchmark writes a file of max(2 × the fastest rate seen on that engine, 10,000/s) × duration + 2,000 new deliveries, each with its \`X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body with the inbox's app secret>\`; \`bench/wrk-signed.lua\` formats them all before the run and sends the next one per request, and reports how many it made (more than the file holds = wrapped repeats). The bare server gets the same kind of file (${n(BARE_DELIVERIES)} deliveries, cycled; it stores nothing).
- **Parley** runs as its own process per database, started as \`npm start\` does (\`${npmStartArgs(root).join(' ')}\` after \`node\`), demo data seeded. Before the load it logs in as \`admin\`, creates a WhatsApp inbox (\`POST /api/v1/inboxes\` with a random \`app_secret\`), checks that a delivery signed with another secret is refused (403) and that one signed delivery becomes one stored message. Each request is authenticated (HMAC of the raw body), stored in \`webhook_events\` with its processing job in the outbox (one transaction) and answered 200; the dispatcher (polling every 50 ms) processes it: contact, conversation, message, dedupe on (inbox, wamid). Environment: \`${SHOWN_ENV}\`.
- **SQLite**: a fresh file in a temp dir (\`journal_mode=WAL\`, \`synchronous=NORMAL\`, as Parley sets them).
${pgSetup}
- **Bare Fastify** (\`bench/bare-server.ts\` with \`BENCH_BARE_METHOD=POST BENCH_BARE_STATUS=200\`): one \`POST /webhooks/:platform/:inboxId\` route answering 200 with \`{"received":true}\` (Parley's answer), no plugins, no hooks, no schema, no signature check; Fastify's JSON parser reads each body.
- Same host (127.0.0.1), same load tool, script and parameters, in the same run; one wrk thread; each server is one Node process.
`;
}
