/**
 * Benchmark "history": authenticated `GET /api/v1/channels/:id/messages?limit=50` on the generated
 * 1,000,000-message SQLite database (bench/lib/generate-messages.ts): the latest page and a deep page
 * (`before_seq` around 100,000) of the 200,000-message channel, and — outside the goal, to show the
 * database path — 5,000 different deep pages in turn, each request a miss of the history page cache.
 * Goal (issue): latest and deep each ≥ 6,000 req/s with p99 ≤ 20 ms at 50 connections. SQLite only for now.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Benchmark, type BenchContext, type BenchOutcome, fmtMs, fmtPct, fmtRps, median } from './benchmark.ts';
import { ensureDataset, mulberry32 } from './generate-messages.ts';
import type { LoadResult } from './load.ts';
import { codeVersion, cpuSnapshot, describeMachine, foreignCpuShare, loadAverage } from './machine.ts';
import { loadRunTable, table } from './markdown.ts';
import { DATASET_SHOWN_ENV, getBody, npmStartArgs, startOnDataset } from './parley.ts';

const GOAL_RPS = 6000;
const GOAL_P99_MS = 20;
const LIMIT = 50;
const DEEP_BEFORE_SEQ = 100_000;
/** Distinct deep pages of the varied target: more than the page cache holds (2,000 by default), visited in turn. */
const VARIED_PAGES = 5000;

type Target = 'latest' | 'deep' | 'varied';
const TARGETS: Target[] = ['latest', 'deep', 'varied'];
const GOAL_TARGETS = ['latest', 'deep'] as const;
interface Run {
  label: string;
  target: Target;
  result: LoadResult;
  foreignCpu: number | null;
}

async function run(ctx: BenchContext): Promise<BenchOutcome> {
  const { root, tool, protocol: p } = ctx;
  if (ctx.cpuProfile) ctx.log('history: --cpu-prof is not supported by this benchmark; measuring without it');
  const dataset = await ensureDataset(root, ctx.log);
  const started = new Date();
  const code = codeVersion(root);
  const loadBefore = loadAverage();
  const { parley, base, token } = await startOnDataset(root, dataset.file, ctx.log);

  const pagePath = (beforeSeq?: number) => `/api/v1/channels/${dataset.bigChannel.id}/messages?limit=${LIMIT}${beforeSeq ? `&before_seq=${beforeSeq}` : ''}`;
  const path = (t: Target) => pagePath(t === 'deep' ? DEEP_BEFORE_SEQ : undefined);
  // The varied target: distinct before_seq values spread over the channel, fixed seed.
  const random = mulberry32(0x4157_0e11);
  const variedSeqs = new Set<number>();
  while (variedSeqs.size < VARIED_PAGES) variedSeqs.add(1000 + Math.floor(random() * (dataset.bigChannel.messages - 2000)));
  const pathsFile = join(ctx.resultsDir, 'varied-paths.txt');
  writeFileSync(pathsFile, [...variedSeqs].map((n) => pagePath(n)).join('\n') + '\n');
  // Check the answers once: 50 messages, the expected seqs.
  const checks: Array<[string, number | undefined]> = [['latest', undefined], ['deep', DEEP_BEFORE_SEQ], ['varied (first)', [...variedSeqs][0]]];
  for (const [name, before] of checks) {
    const page = JSON.parse(await getBody(`${base}${pagePath(before)}`, token)) as { data?: { seq: number }[] };
    const seqs = (page.data ?? []).map((m) => m.seq);
    const top = before === undefined ? dataset.bigChannel.messages : before - 1;
    if (seqs.length !== LIMIT || Math.max(...seqs) !== top || Math.min(...seqs) !== top - LIMIT + 1) {
      throw new Error(`${name} page: expected seqs ${top - LIMIT + 1}..${top}, got ${seqs.length} messages (${Math.min(...seqs)}..${Math.max(...seqs)})`);
    }
  }
  const headers = { Authorization: `Bearer ${token}` };
  const once = async (target: Target, label: string, durationSec: number): Promise<Run> => {
    const dead = parley.exitReason();
    if (dead) throw new Error(`parley ${dead}\n--- its output ---\n${parley.output()}`);
    const before = cpuSnapshot([parley.pid]);
    const result =
      target === 'varied'
        ? await tool.run({ url: base, connections: p.connections, durationSec, headers, pathsFile })
        : await tool.run({ url: `${base}${path(target)}`, connections: p.connections, durationSec, headers });
    const after = cpuSnapshot([parley.pid]);
    writeFileSync(join(ctx.resultsDir, `${label.replace(/\W+/g, '-')}-${target}.txt`), result.raw);
    const r: Run = { label, target, result, foreignCpu: foreignCpuShare(before, after) };
    ctx.log(
      `${label.padEnd(8)} ${target.padEnd(6)} ${fmtRps(result.rps).padStart(7)} req/s  p50 ${fmtMs(result.latencyMs.p50)}  p99 ${fmtMs(result.latencyMs.p99)}` +
        `  non-2xx ${result.non2xx}  socket errors ${result.socketErrors}  other CPU ${fmtPct(r.foreignCpu)}`,
    );
    await sleep(1000);
    return r;
  };
  ctx.log(`load tool: ${tool.name} ${tool.version}: ${tool.describe({ url: `${base}${path('latest')}`, connections: p.connections, durationSec: p.durationSec, headers })}`);
  const warmups: Run[] = [];
  const runs: Run[] = [];
  for (const t of TARGETS) warmups.push(await once(t, 'warm-up', p.warmupSec));
  for (let i = 1; i <= p.rounds; i++) for (const t of TARGETS) runs.push(await once(t, `round ${i}`, p.durationSec));
  await parley.stop();

  const of = (t: Target) => runs.filter((r) => r.target === t);
  const fig = (t: Target) => ({
    rps: median(of(t).map((r) => r.result.rps)),
    p50: median(of(t).map((r) => r.result.latencyMs.p50)),
    p99: median(of(t).map((r) => r.result.latencyMs.p99)),
  });
  const f = { latest: fig('latest'), deep: fig('deep'), varied: fig('varied') };
  const meets = (t: Target) => f[t].rps >= GOAL_RPS && f[t].p99 <= GOAL_P99_MS;
  const bad = [...warmups, ...runs].filter((r) => r.result.non2xx > 0 || r.result.socketErrors > 0);
  const failure = bad.length ? bad.map((r) => `${r.label} ${r.target}: ${r.result.non2xx} non-2xx, ${r.result.socketErrors} socket errors`).join('; ') : runs.length ? undefined : 'no measured round';
  const status: BenchOutcome['status'] = failure ? 'failed' : meets('latest') && meets('deep') ? 'met' : 'not met';
  const word = (t: Target) => (t === 'varied' ? 'outside the goal' : failure ? '**FAILED**' : meets(t) ? '**met**' : '**not met**');
  const maxForeign = Math.max(...runs.map((r) => r.foreignCpu ?? 0));
  const names: Record<Target, string> = {
    latest: `latest page (\`?limit=${LIMIT}\`)`,
    deep: `deep page (\`?limit=${LIMIT}&before_seq=${DEEP_BEFORE_SEQ}\`)`,
    varied: `${VARIED_PAGES.toLocaleString('en-US')} different deep pages in turn (every request a cache miss)`,
  };

  const summary = [
    `history: ${tool.name}, ${p.connections} connections, ${p.rounds} × ${p.durationSec} s per page (medians), SQLite, ${dataset.messages.toLocaleString('en-US')} messages`,
    ...GOAL_TARGETS.map((t) => `  ${t.padEnd(6)} ${fmtRps(f[t].rps)} req/s, p50 ${fmtMs(f[t].p50)}, p99 ${fmtMs(f[t].p99)}: ${meets(t) ? 'MET' : 'NOT MET'}`),
    `  varied ${fmtRps(f.varied.rps)} req/s, p50 ${fmtMs(f.varied.p50)}, p99 ${fmtMs(f.varied.p99)} (${VARIED_PAGES} different pages, page cache missed; outside the goal)`,
    `  goal ≥ ${fmtRps(GOAL_RPS)} req/s and p99 ≤ ${GOAL_P99_MS} ms each: ${status.toUpperCase()}${failure ? ` (${failure})` : ''}`,
  ].join('\n');

  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(', ');
  const markdown = `## Channel history: GET /api/v1/channels/:id/messages (SQLite, 1,000,000 messages)

Goal (issue): authenticated history pages of ${LIMIT} messages at ${p.connections} connections reach
**≥ ${fmtRps(GOAL_RPS)} req/s with p99 ≤ ${GOAL_P99_MS} ms**, for the latest page and for a deep page, on a
database of 1,000,000 messages. **SQLite only for now; PostgreSQL will follow.**

Parley keeps recently read pages in memory (\`HISTORY_CACHE_PAGES\`, default 2,000 pages per process),
keyed by the conversation's \`messages_version\`, which every change to its messages moves in the same
transaction; the version comes from the access check each request runs anyway, so a page is reused
only while nothing in the conversation has changed, on any node. The goal's two pages are read again
and again here, so after the first request they are **cache hits**. The third line shows the database
path: 5,000 different deep pages requested in turn, more than the cache holds, so every request
misses it and reads its 50 messages from SQLite (as JSON built by the database).

${table(
  ['median of ' + p.rounds + ' rounds', 'requests/s', 'p50', 'p99', 'goal'],
  TARGETS.map((t) => [names[t], fmtRps(f[t].rps), fmtMs(f[t].p50), fmtMs(f[t].p99), word(t)]),
  ['l', 'r', 'r', 'r', 'l'],
)}

- Date: ${started.toISOString().replace(/\.\d+Z$/, 'Z')}
- Code: commit ${code}
- Machine: ${describeMachine(ctx.machine)}
- Load average (1, 5, 15 min) before the run: ${load(loadBefore)}; busiest measured run had ${fmtPct(maxForeign)} of the machine's CPU used by other processes
- Command: \`${ctx.command}\`${ctx.command === 'npm run bench' ? ' (runs every benchmark; this one alone: `npm run bench -- history`)' : ''}
- Load tool: ${tool.name} ${tool.version}, one run per line below:
  \`${tool.describe({ url: `http://127.0.0.1:<port>/api/v1/channels/<big channel>/messages?limit=${LIMIT}[&before_seq=${DEEP_BEFORE_SEQ}]`, connections: p.connections, durationSec: p.durationSec, headers })}\`
  and for the varied pages \`${tool.describe({ url: 'http://127.0.0.1:<port>', connections: p.connections, durationSec: p.durationSec, headers, pathsFile: '<paths>' })}\` (\`bench/wrk-paths.lua\` takes the next of ${VARIED_PAGES.toLocaleString('en-US')} paths \`…/messages?limit=${LIMIT}&before_seq=<n>\` for each request, n drawn once with a fixed seed between 1,000 and ${(dataset.bigChannel.messages - 1000).toLocaleString('en-US')})
- Protocol: warm-up ${p.warmupSec} s per target (not counted), then ${p.rounds} rounds of ${p.durationSec} s alternating latest, deep, varied; medians over the rounds. Every response must be 2xx and no socket error may occur, else the benchmark is marked failed. Before measuring, the latest, the deep and the first varied page are checked to hold the ${LIMIT} expected messages.

${loadRunTable('page', [...warmups, ...runs], (r) => r.target)}

How it is set up:

- **Data** (\`bench/lib/generate-messages.ts\`, generated once in ${dataset.generatedInSec.toFixed(0)} s and cached in \`bench/.results/dataset/\`): Parley migrates and seeds the demo users into an empty SQLite file, then ${dataset.messages.toLocaleString('en-US')} messages are written in ${dataset.channels} public channels: \`${dataset.bigChannel.name}\` holds ${dataset.bigChannel.messages.toLocaleString('en-US')} (every 5th message), the other 99 share the rest; 3–40 words per message (one or two sentences of 3–20 words) drawn from a Zipf distribution over a 5,000-word vocabulary with a fixed-seed PRNG (the same database every time); search index filled by the triggers of migration 0005; \`conversations.last_seq\` consistent; admin, agent1 and agent2 members of every channel.
- **Parley** runs as its own process, started exactly as \`npm start\` does (\`${npmStartArgs(root).join(' ')}\` after \`node\`), on that database; the load tool logs in as \`agent1\` once and sends that access token on every request. Environment: \`${DATASET_SHOWN_ENV}\`.
- One Node process for Parley${tool.name === 'wrk' ? '; with `-t1` wrk uses one thread, so on a 2-core machine load tool and server each get about one core' : ''}.
`;
  return { status, summary, markdown };
}

export const history: Benchmark = { id: 'history', title: 'Channel history pages on 1,000,000 messages (SQLite)', run };
