/**
 * Benchmark "search": per-query latency of authenticated `GET /api/v1/search?q=<word>` over the
 * generated 1,000,000-message SQLite database (bench/lib/generate-messages.ts), for a rare, a
 * mid-frequency and a common word. Requests are sequential (concurrency 1) on one keep-alive
 * connection, so the percentiles are those of single queries, not of a queue.
 * Goal (issue): p95 ≤ 50 ms for each word. SQLite only for now.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { type Benchmark, type BenchContext, type BenchOutcome, fmtMs, fmtPct } from './benchmark.ts';
import { ensureDataset, type WordStat } from './generate-messages.ts';
import { codeVersion, cpuSnapshot, describeMachine, foreignCpuShare, loadAverage } from './machine.ts';
import { table } from './markdown.ts';
import { DATASET_SHOWN_ENV, npmStartArgs, startOnDataset } from './parley.ts';

const GOAL_P95_MS = 50;
const REQUESTS = 200;
const WARMUP = 20;

const pct = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;

interface WordRun {
  kind: 'rare' | 'mid' | 'common';
  word: WordStat;
  hits: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  foreignCpu: number | null;
}

async function run(ctx: BenchContext): Promise<BenchOutcome> {
  const { root } = ctx;
  if (ctx.cpuProfile) ctx.log('search: --cpu-prof is not supported by this benchmark; measuring without it');
  const dataset = await ensureDataset(root, ctx.log);
  const started = new Date();
  const code = codeVersion(root);
  const loadBefore = loadAverage();
  const { parley, base, token } = await startOnDataset(root, dataset.file, ctx.log);
  const headers = { authorization: `Bearer ${token}` };

  const query = async (word: string): Promise<number> => {
    const res = await fetch(`${base}/api/v1/search?q=${encodeURIComponent(word)}`, { headers });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`search "${word}" answered ${res.status}: ${text}`);
    return ((JSON.parse(text) as { data: unknown[] }).data ?? []).length;
  };
  const results: WordRun[] = [];
  for (const kind of ['rare', 'mid', 'common'] as const) {
    const w = dataset.words[kind];
    let hits = 0;
    for (let i = 0; i < WARMUP; i++) hits = await query(w.word);
    if (hits === 0) throw new Error(`search "${w.word}" found nothing (${w.messages} messages contain it)`);
    const times: number[] = [];
    const before = cpuSnapshot([parley.pid]);
    for (let i = 0; i < REQUESTS; i++) {
      const t = performance.now();
      await query(w.word);
      times.push(performance.now() - t);
    }
    const after = cpuSnapshot([parley.pid]);
    writeFileSync(join(ctx.resultsDir, `${kind}-${w.word}.txt`), `${times.map((x) => x.toFixed(3)).join('\n')}\n`);
    const s = [...times].sort((a, b) => a - b);
    const r: WordRun = { kind, word: w, hits, p50: pct(s, 0.5), p95: pct(s, 0.95), p99: pct(s, 0.99), max: s.at(-1)!, foreignCpu: foreignCpuShare(before, after) };
    results.push(r);
    ctx.log(`${kind.padEnd(6)} "${w.word}" (${w.messages.toLocaleString('en-US')} messages): p50 ${fmtMs(r.p50)}  p95 ${fmtMs(r.p95)}  p99 ${fmtMs(r.p99)}  max ${fmtMs(r.max)}  other CPU ${fmtPct(r.foreignCpu)}`);
  }
  await parley.stop();

  const meets = (r: WordRun) => r.p95 <= GOAL_P95_MS;
  const status: BenchOutcome['status'] = results.every(meets) ? 'met' : 'not met';
  const summary = [
    `search: ${REQUESTS} sequential requests per word (after ${WARMUP} warm-up), SQLite, ${dataset.messages.toLocaleString('en-US')} messages`,
    ...results.map((r) => `  ${r.kind.padEnd(6)} "${r.word.word}" in ${r.word.messages.toLocaleString('en-US')} messages: p50 ${fmtMs(r.p50)}, p95 ${fmtMs(r.p95)}: ${meets(r) ? 'MET' : 'NOT MET'}`),
    `  goal p95 ≤ ${GOAL_P95_MS} ms for each word: ${status.toUpperCase()}`,
  ].join('\n');
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(', ');
  const markdown = `## Search: GET /api/v1/search?q=<word> (SQLite, 1,000,000 messages)

Goal (issue): the **p95 latency of a search ≤ ${GOAL_P95_MS} ms** over 1,000,000 messages, for a rare, a
mid-frequency and a common word. **SQLite only for now; PostgreSQL will follow.**

${table(
  [`${REQUESTS} sequential requests per word`, 'messages with the word', 'hits returned', 'p50', 'p95', 'p99', 'max', 'goal (p95)'],
  results.map((r) => [
    `${r.kind}: \`${r.word.word}\``,
    r.word.messages.toLocaleString('en-US'),
    String(r.hits),
    fmtMs(r.p50),
    fmtMs(r.p95),
    fmtMs(r.p99),
    fmtMs(r.max),
    meets(r) ? '**met**' : '**not met**',
  ]),
  ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
)}

- Date: ${started.toISOString().replace(/\.\d+Z$/, 'Z')}
- Code: commit ${code}
- Machine: ${describeMachine(ctx.machine)}
- Load average (1, 5, 15 min) before the run: ${load(loadBefore)}; other processes used at most ${fmtPct(Math.max(...results.map((r) => r.foreignCpu ?? 0)))} of the machine's CPU during a word's requests
- Command: \`${ctx.command}\`${ctx.command === 'npm run bench' ? ' (runs every benchmark; this one alone: `npm run bench -- search`)' : ''}
- Protocol: per word, ${WARMUP} warm-up requests (not counted), then ${REQUESTS} requests one after the other (concurrency 1, one keep-alive connection, Node's \`fetch\` in the harness process), each timed from sending to the last byte of the body; every answer must be 200 with at least one hit. Default page size (20 hits), no filters. Latencies of every request are kept in \`bench/.results/\`. The run protocol options (\`--duration\`, \`--rounds\`) do not apply.
- Words: drawn from the generated text by rank in its Zipf vocabulary (most common, rank 151, last of 5,000); "messages with the word" is counted in the FTS index. A word in very many messages is ranked among its newest 500 matches (README, Search).

How it is set up: the same generated database and the same Parley process setup as the history benchmark above (Parley started as \`npm start\` does: \`${npmStartArgs(root).join(' ')}\` after \`node\`; logged in as \`agent1\`, a member of all ${dataset.channels} channels, so every message is searchable). Environment: \`${DATASET_SHOWN_ENV}\`.
`;
  return { status, summary, markdown };
}

export const search: Benchmark = { id: 'search', title: 'Search p95 latency on 1,000,000 messages (SQLite)', run };
