/**
 * Scenario "two-nodes": two Parley nodes on one PostgreSQL database and one Redis (the event bus
 * between them). Half the subscribers of one room are connected to each node; messages are posted
 * through the API of one node at the big-room latency rate; the p99 of the subscribers on the other
 * node minus the p99 of those on the posting node is the latency added by crossing nodes.
 * Goal (issue): added p99 across nodes ≤ 2 ms.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { findPgBinDir } from '../../test/helpers/pg-server.ts';
import { startCleanedPgServer } from '../lib/postgres.ts';
import { findRedisServerBin, startRedisServer } from '../../test/helpers/redis-server.ts';
import { fmtMs, median } from '../lib/benchmark.ts';
import { table } from '../lib/markdown.ts';
import { onCleanup } from '../lib/proc.ts';
import { pct, type WsContext } from './context.ts';
import { mergeStats } from './fleet.ts';
import { facts, type Outcome, startFacts, verdictWord } from './report.ts';
import { newSecret, type Server, setupFixture, SHOWN_ENV, startParley } from './servers.ts';
import { makeTempDir } from '../lib/proc.ts';

const GOAL_MS = 2;

interface Run {
  label: string;
  postedTo: 'A' | 'B';
  same: { p50: number; p99: number; n: number };
  cross: { p50: number; p99: number; n: number };
  posts: number;
  clientCpuMax: number;
  problems: string[];
}

async function startBackends(ctx: WsContext): Promise<{ databaseUrl: string; redisUrl: string; pgVersion: string }> {
  const binDir = findPgBinDir();
  if (!binDir) throw new Error('PostgreSQL is not installed (no initdb/postgres found); install it, e.g. apt-get install postgresql');
  if (!findRedisServerBin()) throw new Error('redis-server is not installed; install it, e.g. apt-get install redis-server');
  ctx.log(`two-nodes: starting a throwaway PostgreSQL (${binDir}) and Redis`);
  const pgServer = await startCleanedPgServer(binDir);
  const redis = await startRedisServer();
  onCleanup({ name: 'redis', run: () => redis.stop(), sync: () => undefined });
  const admin = new pg.Client({ connectionString: pgServer.url });
  await admin.connect();
  try {
    await admin.query('create database parley_bench_ws');
    const v = (await admin.query<{ v: string }>(`select current_setting('server_version') as v`)).rows[0]!.v;
    return { databaseUrl: pgServer.url.replace(/\/postgres$/, '/parley_bench_ws'), redisUrl: redis.url, pgVersion: v };
  } finally {
    await admin.end();
  }
}

async function once(ctx: WsContext, nodes: [Server, Server], fx: { channel: string; tokens: string[] }, postedTo: 0 | 1, label: string): Promise<Run> {
  const o = ctx.opts;
  const fleet = await ctx.env.fleet();
  const publisher = await ctx.env.publisher();
  const rooms = Array.from({ length: o.bigRoom }, () => fx.channel);
  // Load process p connects to node p mod 2.
  const c = await fleet.connect({ target: 'parley', bases: nodes.map((n) => n.base), tokens: fx.tokens, rooms, concurrency: 100 });
  await publisher.begin({ base: nodes[postedTo].base, channel: fx.channel, token: fx.tokens[0]!, mode: 'rate', rate: o.latencyRate });
  await sleep(o.warmupSec * 1000);
  await fleet.measure(true);
  await sleep(o.durationSec * 1000);
  const perProcess = await fleet.measure(false);
  const pub = await publisher.end();
  await fleet.close();
  await sleep(500);
  const of = (node: number) => mergeStats(perProcess.filter((_, p) => p % 2 === node));
  const same = of(postedTo);
  const cross = of(1 - postedTo);
  const all = mergeStats(perProcess);
  const q = (s: ReturnType<typeof mergeStats>) => ({ p50: s.hist.quantile(0.5), p99: s.hist.quantile(0.99), n: s.deliveries });
  const problems = [
    ...(c.failed ? [`${c.failed} connections failed (${c.errors[0] ?? ''})`] : []),
    ...(pub.failed ? [`${pub.failed} posts failed (${pub.errors[0] ?? ''})`] : []),
    ...(all.lost ? [`${all.lost} connections lost (${all.errors[0] ?? ''})`] : []),
    ...(same.deliveries === 0 || cross.deliveries === 0 ? ['no deliveries on one node'] : []),
  ];
  const r: Run = { label, postedTo: postedTo === 0 ? 'A' : 'B', same: q(same), cross: q(cross), posts: pub.ok, clientCpuMax: all.cpuMax, problems };
  ctx.log(
    `${label.padEnd(8)} posted to ${r.postedTo}: same node p50 ${fmtMs(r.same.p50)} p99 ${fmtMs(r.same.p99)}; other node p50 ${fmtMs(r.cross.p50)} p99 ${fmtMs(r.cross.p99)}` +
      `  clients max ${pct(r.clientCpuMax)}${problems.length ? `  PROBLEMS: ${problems.join('; ')}` : ''}`,
  );
  return r;
}

export async function twoNodes(ctx: WsContext): Promise<Outcome> {
  const o = ctx.opts;
  if (o.processes < 2) throw new Error('two-nodes needs at least 2 load processes (--processes)');
  const { started, loadBefore } = startFacts();
  const { databaseUrl, redisUrl, pgVersion } = await startBackends(ctx);
  const secret = newSecret();
  const extraEnv = { DATABASE_URL: databaseUrl, REDIS_URL: redisUrl };
  const dir = makeTempDir('parley-bench-ws-nodes-');
  // One after the other: the first migrates the database and seeds it.
  const a = await startParley(ctx.root, { name: 'parley node A', secret, extraEnv });
  const b = await startParley(ctx.root, { name: 'parley node B', secret, extraEnv });
  const fx = await setupFixture(a.base, dir);
  ctx.log(`two-nodes: ${o.bigRoom} subscribers, half on each node; ${o.latencyRate} messages/s posted to one node (alternating per round)`);
  const runs: Run[] = [];
  for (let i = 1; i <= o.rounds; i++) runs.push(await once(ctx, [a, b], fx, ((i - 1) % 2) as 0 | 1, `round ${i}`));
  await b.service.stop();
  await a.service.stop();

  const med = (f: (r: Run) => number) => median(runs.map(f));
  const added = med((r) => r.cross.p99 - r.same.p99);
  const problems = runs.filter((r) => r.problems.length).map((r) => `${r.label}: ${r.problems.join('; ')}`);
  const failure = problems.length ? problems.join(' | ') : undefined;
  const status: Outcome['status'] = failure ? 'failed' : added <= GOAL_MS ? 'met' : 'not met';
  const summary = [
    `two-nodes: ${o.bigRoom} subscribers (half per node), ${o.latencyRate} msg/s, median of ${o.rounds} × ${o.durationSec} s`,
    `  same node p99 ${fmtMs(med((r) => r.same.p99))}, other node p99 ${fmtMs(med((r) => r.cross.p99))}`,
    `  added p99 across nodes ${added.toFixed(2)} ms (goal ≤ ${GOAL_MS} ms): ${status.toUpperCase()}${failure ? ` (${failure})` : ''}`,
  ].join('\n');
  const markdown = `## WebSocket across two nodes (PostgreSQL + Redis)

Goal (issue): with two nodes, the p99 added for subscribers on the other node than the one a message was posted to **≤ ${GOAL_MS} ms**.

Result: p99 on the posting node ${fmtMs(med((r) => r.same.p99))}, on the other node ${fmtMs(med((r) => r.cross.p99))}: added **${added.toFixed(2)} ms** (median of the per-round differences) — goal ${verdictWord(status, failure)}.

${table(
  ['run', 'posted to', 'same node p50', 'same node p99', 'other node p50', 'other node p99', 'added p99', 'posts', 'load process CPU (max)', 'problems'],
  runs.map((r) => [r.label, `node ${r.postedTo}`, fmtMs(r.same.p50), fmtMs(r.same.p99), fmtMs(r.cross.p50), fmtMs(r.cross.p99), `${(r.cross.p99 - r.same.p99).toFixed(2)} ms`, String(r.posts), pct(r.clientCpuMax), r.problems.join('; ') || '—']),
  ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
)}

${facts(ctx, started, loadBefore, 'two-nodes', [a.code, b.code])}
- Setup: a throwaway PostgreSQL ${pgVersion} (\`test/helpers/pg-server.ts\`: 127.0.0.1, **fsync off**) and Redis (\`test/helpers/redis-server.ts\`, no persistence); two Parley processes started as \`npm start\` does with \`DATABASE_URL=postgres://…\` and \`REDIS_URL=redis://…\` (the Redis event bus carries events between nodes), the same \`JWT_SECRET\`, otherwise \`${SHOWN_ENV}\`. ${o.bigRoom.toLocaleString('en-US')} subscribers of one public channel: load process p connects to node p mod 2 (${o.processes} processes), so half are on each node.
- Protocol: per round, connect and subscribe, ${o.latencyRate} messages/s posted through the HTTP API of node A (odd rounds) or B (even rounds), ${o.warmupSec} s warm-up, ${o.durationSec} s measured; latency from just before the POST is written to the frame's arrival. Everything (both nodes, PostgreSQL, Redis, load processes) shares the machine's ${ctx.machine.cores} cores.
`;
  return { status, summary, markdown };
}
