/**
 * Scenario "memory": server memory per idle authenticated connection at 10,000 connections —
 * the growth of the server process's RSS (/proc/<pid>/status VmRSS) from before to after opening
 * them, divided by their number; a fresh server for every round and target, clients in the load
 * processes. Goal (issue): Parley ≤ 1.6× bare ws.
 *
 * Beside it, the live memory per connection: each server runs with its inspector on loopback,
 * and after each RSS reading the benchmark has it collect all garbage and report its heap in
 * use and external memory (bench/ws/inspector.ts). RSS growth also counts garbage and the young
 * generation growing to its configured size (32 MB semi-spaces for Parley's `npm start`, 16 MB
 * by default for the baselines); the live figure is what the connections themselves hold.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { median } from '../lib/benchmark.ts';
import { table } from '../lib/markdown.ts';
import { NAMES, type WsContext } from './context.ts';
import { openFileLimit, rssBytes } from './fleet.ts';
import { InspectorClient, type LiveMemory } from './inspector.ts';
import { freePort } from '../lib/proc.ts';
import { facts, type Outcome, startFacts, verdictWord } from './report.ts';
import { type Server, setupFixture, SHOWN_ENV, startBaseline, startParley } from './servers.ts';
import { makeTempDir } from '../lib/proc.ts';
import type { Target } from './shared.ts';

const TARGETS: Target[] = ['bare', 'socketio', 'parley'];
const SETTLE_MS = 5000;

interface Run {
  label: string;
  target: Target;
  ok: number;
  failed: number;
  rssBefore: number;
  rssAfter: number;
  perConn: number;
  liveBefore: LiveMemory;
  liveAfter: LiveMemory;
  /** Growth of heap in use + external memory after full collections, per connection. */
  livePerConn: number;
  connectMs: number;
  openFiles: string;
  errors: string[];
  /** The code the server was started on (Parley), else ''. */
  code: string;
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

async function freshServer(ctx: WsContext, target: Target): Promise<{ server: Server; tokens: string[]; inspector: InspectorClient }> {
  const inspectPort = await freePort();
  const nodeFlags = [`--inspect=127.0.0.1:${inspectPort}`];
  if (target === 'parley') {
    const dir = makeTempDir('parley-bench-ws-memory-');
    const server = await startParley(ctx.root, { name: 'parley (memory)', dataDir: dir, nodeFlags });
    return { server, tokens: (await setupFixture(server.base, dir)).tokens, inspector: await InspectorClient.connect(inspectPort) };
  }
  const { fixture } = await ctx.env.parley();
  return { server: await startBaseline(ctx.root, target, fixture.templateFile, nodeFlags), tokens: fixture.tokens, inspector: await InspectorClient.connect(inspectPort) };
}

const liveTotal = (m: LiveMemory) => m.heapUsed + m.external;

async function once(ctx: WsContext, target: Target, label: string): Promise<Run> {
  const fleet = await ctx.env.fleet();
  const { server, tokens, inspector } = await freshServer(ctx, target);
  const pid = server.service.pid;
  // Warm-up: the first connections load and compile the code paths; not counted.
  await fleet.connect({ target, bases: [server.base], tokens, rooms: Array.from({ length: 100 }, () => null), concurrency: 50 });
  await fleet.close();
  // Collected before the RSS reading too (not between it and the connections), so both figures start from the same state.
  const liveBefore = await inspector.liveMemory();
  await sleep(2000);
  const rssBefore = rssBytes(pid);
  const c = await fleet.connect({ target, bases: [server.base], tokens, rooms: Array.from({ length: ctx.opts.idle }, () => null), concurrency: 200 });
  await sleep(SETTLE_MS);
  const rssAfter = rssBytes(pid);
  const liveAfter = await inspector.liveMemory();
  const openFiles = openFileLimit(pid);
  inspector.close();
  await fleet.close();
  await server.service.stop();
  const livePerConn = (liveTotal(liveAfter) - liveTotal(liveBefore)) / c.ok;
  const r: Run = { label, target, ok: c.ok, failed: c.failed, rssBefore, rssAfter, perConn: (rssAfter - rssBefore) / c.ok, liveBefore, liveAfter, livePerConn, connectMs: c.ms, openFiles, errors: c.errors, code: server.code };
  ctx.log(
    `${label.padEnd(8)} ${NAMES[target].padEnd(9)} ${c.ok} connections (${c.failed} failed) in ${(c.ms / 1000).toFixed(1)} s; RSS ${mb(rssBefore)} → ${mb(rssAfter)} = ${kb(r.perConn)} per connection; live ${kb(livePerConn)}`,
  );
  return r;
}

export async function memory(ctx: WsContext): Promise<Outcome> {
  const { started, loadBefore } = startFacts();
  const o = ctx.opts;
  const fleet = await ctx.env.fleet();
  const perProcess = Math.ceil(o.idle / o.processes);
  ctx.log(`memory: ${o.idle} idle connections per target in ${o.processes} load processes (${perProcess} each; their open-file limits: ${fleet.maxOpenFiles.join(', ')})`);
  const runs: Run[] = [];
  for (let i = 1; i <= o.rounds; i++) for (const t of TARGETS) runs.push(await once(ctx, t, `round ${i}`));
  const per = (t: Target) => median(runs.filter((r) => r.target === t).map((r) => r.perConn));
  const ratio = per('parley') / per('bare');
  const live = (t: Target) => median(runs.filter((r) => r.target === t).map((r) => r.livePerConn));
  const liveRatio = live('parley') / live('bare');
  const bad = runs.filter((r) => r.failed > 0);
  const failure = bad.length ? bad.map((r) => `${r.label} ${NAMES[r.target]}: ${r.failed} connections failed (${r.errors[0] ?? ''})`).join('; ') : undefined;
  const status: Outcome['status'] = failure ? 'failed' : ratio <= 1.6 ? 'met' : 'not met';
  const summary = [
    `memory: ${o.idle} idle connections, median of ${o.rounds}`,
    ...TARGETS.map((t) => `  ${NAMES[t].padEnd(9)} ${kb(per(t))} per connection`),
    `  Parley / bare ${ratio.toFixed(2)}× (goal ≤ 1.6×): ${status.toUpperCase()}${failure ? ` (${failure})` : ''}`,
    `  live memory after full GC: bare ws ${kb(live('bare'))}, Socket.IO ${kb(live('socketio'))}, Parley ${kb(live('parley'))} per connection = ${liveRatio.toFixed(2)}× bare`,
  ].join('\n');
  const markdown = `## WebSocket memory per idle authenticated connection (${o.idle.toLocaleString('en-US')} connections)

Goal (issue): server memory per idle authenticated connection at ${o.idle.toLocaleString('en-US')} connections **≤ 1.6× bare ws**.

Result: Parley ${kb(per('parley'))}, bare ws ${kb(per('bare'))}, Socket.IO ${kb(per('socketio'))} per connection of RSS growth → Parley **${ratio.toFixed(2)}×** bare ws — goal ${verdictWord(status, failure)}. Live memory (after full collections): Parley ${kb(live('parley'))}, bare ws ${kb(live('bare'))}, Socket.IO ${kb(live('socketio'))} per connection = ${liveRatio.toFixed(2)}× bare ws.

${table(
  [`median of ${o.rounds} rounds`, 'bare ws', 'Socket.IO', 'Parley', 'Parley / bare'],
  [
    ['RSS growth per connection (the goal)', kb(per('bare')), kb(per('socketio')), kb(per('parley')), `${ratio.toFixed(2)}×`],
    ['live memory per connection (heap in use + external, after full GC)', kb(live('bare')), kb(live('socketio')), kb(live('parley')), `${liveRatio.toFixed(2)}×`],
  ],
  ['l', 'r', 'r', 'r', 'r'],
)}

${facts(ctx, started, loadBefore, 'memory', runs.filter((r) => r.target === 'parley').map((r) => r.code))}
- Protocol: per round and target a **fresh server process**; 100 connections opened and closed (warm-up: code loaded and compiled), full collections and the live reading (below), 2 s pause, RSS read; then ${o.idle.toLocaleString('en-US')} connections opened (200 at a time per load process), ${SETTLE_MS / 1000} s pause, RSS read again; (after − before) / connections. ${o.rounds} rounds alternating bare ws, Socket.IO, Parley; medians.
- Idle authenticated connection: Parley checks the access token at the handshake (the 5 benchmark users' tokens in turn), registers the connection (personal and organization topics, presence) and sends \`hello\`; no conversation subscribed. The baselines accept any non-empty token and send \`hello\` (Socket.IO: handshake with \`auth.token\`, middleware check, \`hello\` event).
- Open files: server processes' soft limit ${[...new Set(runs.map((r) => r.openFiles))].join(', ')} (read from /proc/<pid>/limits; inherited, not raised), load processes' ${fleet.maxOpenFiles.join(', ')} for ${perProcess.toLocaleString('en-US')} connections each.
- Caveat: RSS includes heap garbage not yet collected and V8's young generation, which grows while the connections are made (their objects survive scavenges) up to its configured size: 32 MB semi-spaces for Parley (\`--max-semi-space-size=32\`, as \`npm start\`: it buys ~50 % more HTTP throughput than 16, see "users/me"), Node's default 16 MB for the baselines. So the RSS figure is what the operating system sees the process take, not what the connections hold.
- Live memory: every server runs with \`--inspect=127.0.0.1:<free port>\` (nothing attached while connections are made); right after each RSS reading the benchmark connects to the inspector, has the process run two full collections (\`HeapProfiler.collectGarbage\`) and reads \`process.memoryUsage()\` in it; (heap in use + external after − before) / connections. This is what the connections themselves keep alive.

${table(
  ['run', 'target', 'connections', 'failed', 'connect time', 'RSS before', 'RSS after', 'RSS per connection', 'live before', 'live after', 'live per connection'],
  runs.map((r) => [
    r.label,
    NAMES[r.target],
    r.ok.toLocaleString('en-US'),
    String(r.failed),
    `${(r.connectMs / 1000).toFixed(1)} s`,
    mb(r.rssBefore),
    mb(r.rssAfter),
    kb(r.perConn),
    mb(liveTotal(r.liveBefore)),
    mb(liveTotal(r.liveAfter)),
    kb(r.livePerConn),
  ]),
  ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
)}

Parley environment: \`${SHOWN_ENV}\`.
`;
  return { status, summary, markdown };
}
