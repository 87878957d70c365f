/**
 * Scenario "small-rooms": 5,000 connections in 1,000 conversations of 5 (one connection of each of
 * the 5 benchmark users per conversation, all members), 1,000 messages per second sent over the
 * WebSocket (`send_message`) and persisted, each delivered to the 5 subscribers of its room.
 * Goal (issue): Parley's p99 send → receive ≤ bare ws p99 + 4 ms.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { fmtMs, fmtRps, median } from '../lib/benchmark.ts';
import { table } from '../lib/markdown.ts';
import { bottleneck, contentionNote, type CpuWindow, cpuWindow, NAMES, pct, type WsContext } from './context.ts';
import { mergeStats, sum } from './fleet.ts';
import { facts, type Outcome, startFacts, verdictWord } from './report.ts';
import { createChannels, SHOWN_ENV } from './servers.ts';
import type { ClientEvent, Target } from './shared.ts';

const TARGETS: Target[] = ['bare', 'parley'];
const GOAL_ADDED_MS = 4;

interface Run {
  label: string;
  target: Target;
  sent: number;
  acked: number;
  failedSends: number;
  deliveries: number;
  perSec: number;
  p50: number;
  p99: number;
  max: number;
  cpu: CpuWindow;
  clientCpuMax: number;
  problems: string[];
}

async function once(ctx: WsContext, target: Target, channels: string[], label: string): Promise<Run> {
  const o = ctx.opts;
  const server = await ctx.env.server(target);
  const { fixture } = await ctx.env.parley();
  const fleet = await ctx.env.fleet();
  const rooms = Array.from({ length: channels.length * o.smallRoomSize }, (_, i) => channels[Math.floor(i / o.smallRoomSize)]!);
  const c = await fleet.connect({ target, bases: [server.base], tokens: fixture.tokens, rooms, concurrency: 200, align: o.smallRoomSize });
  const ratePerSec = o.smallRate / o.processes;
  await fleet.all({ cmd: 'send', ratePerSec, durationMs: o.warmupSec * 1000 });
  const stopCpu = cpuWindow([server.service.pid], [server.service.pid, ...fleet.pids]);
  await fleet.measure(true);
  const sent = await fleet.all<Extract<ClientEvent, { ev: 'sent' }>>({ cmd: 'send', ratePerSec, durationMs: o.durationSec * 1000 });
  await sleep(500); // the last deliveries
  const stats = mergeStats(await fleet.measure(false));
  const cpu = stopCpu();
  await fleet.close();
  await sleep(1000);
  const acked = sum(sent.map((s) => s.acked));
  const failedSends = sum(sent.map((s) => s.failed));
  const problems = [
    ...(c.failed ? [`${c.failed} connections failed (${c.errors[0] ?? ''})`] : []),
    ...(failedSends ? [`${failedSends} sends failed (${sent.flatMap((s) => s.errors)[0] ?? ''})`] : []),
    ...(stats.lost ? [`${stats.lost} connections lost (${stats.errors[0] ?? ''})`] : []),
    ...(stats.deliveries < acked * o.smallRoomSize ? [`${stats.deliveries} deliveries for ${acked} acknowledged messages × ${o.smallRoomSize}`] : []),
  ];
  const r: Run = {
    label,
    target,
    sent: sum(sent.map((s) => s.sent)),
    acked,
    failedSends,
    deliveries: stats.deliveries,
    perSec: stats.perSec,
    p50: stats.hist.quantile(0.5),
    p99: stats.hist.quantile(0.99),
    max: stats.hist.max,
    cpu,
    clientCpuMax: stats.cpuMax,
    problems,
  };
  ctx.log(
    `${label.padEnd(8)} ${NAMES[target].padEnd(7)} ${r.acked} sent+acked, ${fmtRps(r.perSec)} deliveries/s  p50 ${fmtMs(r.p50)}  p99 ${fmtMs(r.p99)}  max ${fmtMs(r.max)}` +
      `  server CPU ${pct(cpu.server)}  clients max ${pct(r.clientCpuMax)}  other ${pct(cpu.foreign)}${problems.length ? `  PROBLEMS: ${problems.join('; ')}` : ''}`,
  );
  return r;
}

export async function smallRooms(ctx: WsContext): Promise<Outcome> {
  const { started, loadBefore } = startFacts();
  const o = ctx.opts;
  const roomCount = Math.ceil(o.smallConnections / o.smallRoomSize);
  const { server, fixture } = await ctx.env.parley();
  for (const t of TARGETS) await ctx.env.server(t);
  ctx.log(`small-rooms: creating ${roomCount} private channels with the ${fixture.users.length} benchmark users as members`);
  const channels = await createChannels(server.base, fixture, 'ws-room', roomCount, true);
  ctx.log(`small-rooms: ${roomCount * o.smallRoomSize} connections in ${roomCount} rooms of ${o.smallRoomSize}, ${o.smallRate} messages/s over the sockets`);
  const runs: Run[] = [];
  for (let i = 1; i <= o.rounds; i++) for (const t of TARGETS) runs.push(await once(ctx, t, channels, `round ${i}`));

  const med = (t: Target, f: (r: Run) => number) => median(runs.filter((r) => r.target === t).map(f));
  const added = med('parley', (r) => r.p99) - med('bare', (r) => r.p99);
  const problems = runs.filter((r) => r.problems.length).map((r) => `${r.label} ${NAMES[r.target]}: ${r.problems.join('; ')}`);
  const failure = problems.length ? problems.join(' | ') : undefined;
  const status: Outcome['status'] = failure ? 'failed' : added <= GOAL_ADDED_MS ? 'met' : 'not met';
  const summary = [
    `small-rooms: ${roomCount * o.smallRoomSize} connections, rooms of ${o.smallRoomSize}, ${o.smallRate} msg/s, median of ${o.rounds} × ${o.durationSec} s`,
    ...TARGETS.map((t) => `  ${NAMES[t].padEnd(7)} p50 ${fmtMs(med(t, (r) => r.p50))}, p99 ${fmtMs(med(t, (r) => r.p99))}`),
    `  Parley p99 − bare p99 = ${added.toFixed(2)} ms (goal ≤ ${GOAL_ADDED_MS} ms): ${status.toUpperCase()}${failure ? ` (${failure})` : ''}`,
  ].join('\n');
  const markdown = `## WebSocket small rooms: ${(roomCount * o.smallRoomSize).toLocaleString('en-US')} connections in ${roomCount.toLocaleString('en-US')} conversations of ${o.smallRoomSize}, ${o.smallRate.toLocaleString('en-US')} messages/s over WebSocket

Goal (issue): with messages sent over the WebSocket and persisted, p99 send → receive **≤ bare ws p99 + ${GOAL_ADDED_MS} ms**.

Result: Parley p99 ${fmtMs(med('parley', (r) => r.p99))} vs bare ws ${fmtMs(med('bare', (r) => r.p99))}: **+${added.toFixed(2)} ms** — goal ${verdictWord(status, failure)}.
${contentionNote(runs.map((r) => r.cpu))}
${table(
  [`median of ${o.rounds} rounds`, 'bare ws', 'Parley', 'Parley − bare'],
  (['p50', 'p99', 'max'] as const).map((k) => [k, fmtMs(med('bare', (r) => r[k])), fmtMs(med('parley', (r) => r[k])), `${(med('parley', (r) => r[k]) - med('bare', (r) => r[k])).toFixed(2)} ms`]),
  ['l', 'r', 'r', 'r'],
)}

${facts(ctx, started, loadBefore, 'small-rooms', [server.code])}
- Setup: ${roomCount.toLocaleString('en-US')} private channels, each with the 5 benchmark users as members; connection i uses user i mod 5's token and subscribes to channel ⌊i / ${o.smallRoomSize}⌋, so each room has one connection of each member, and a room's connections live in one load process (${o.processes} processes).
- Sending: each load process sends ${fmtRps(o.smallRate / o.processes)} messages/s (checked every millisecond, open loop) as \`send_message\` from its connections, going round the rooms so consecutive messages go to different rooms; the body carries the send time, taken just before the frame is written. Parley checks membership, persists the message (SQLite) and acknowledges with it; the bare server broadcasts and acknowledges at once (nothing stored). The sender's own connection receives the message too (it is subscribed), as in a room broadcast.
- Protocol: per round and target: connect and subscribe, ${o.warmupSec} s of sending (not counted), ${o.durationSec} s measured plus 0.5 s for the last deliveries, disconnect; ${o.rounds} rounds alternating bare ws, Parley; medians of each run's quantiles. Every send must be acknowledged and every acknowledged message delivered to all ${o.smallRoomSize} subscribers, else the benchmark is marked failed.

${table(
  ['run', 'target', 'sent', 'acknowledged', 'deliveries', 'deliveries/s', 'p50', 'p99', 'max', 'server CPU', 'load process CPU (max)', 'other CPU', 'limited by', 'problems'],
  runs.map((r) => [
    r.label,
    NAMES[r.target],
    r.sent.toLocaleString('en-US'),
    r.acked.toLocaleString('en-US'),
    r.deliveries.toLocaleString('en-US'),
    fmtRps(r.perSec),
    fmtMs(r.p50),
    fmtMs(r.p99),
    fmtMs(r.max),
    pct(r.cpu.server),
    pct(r.clientCpuMax),
    pct(r.cpu.foreign),
    bottleneck(r.cpu, r.clientCpuMax, ctx.machine.cores),
    r.problems.join('; ') || '—',
  ]),
  ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'l'],
)}

Parley environment: \`${SHOWN_ENV}\`.
`;
  return { status, summary, markdown };
}
