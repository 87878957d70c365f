/**
 * Scenarios "fanout" and "latency": one conversation (room) with many subscribers, messages
 * posted through the HTTP API by a publisher process, measured by the load processes.
 *
 * - fanout: the publisher keeps `window` messages in flight (closed loop, credit back when a
 *   message reached every subscriber): deliveries per second at saturation.
 *   Goal (issue): Parley ≥ 1.0× bare ws and ≥ 1.2× Socket.IO.
 * - latency: 20 messages per second, open loop: p99 from the POST being sent to a subscriber
 *   receiving the frame. Goal (issue): Parley p99 ≤ 1.2× bare ws.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { fmtMs, fmtRps, median } from '../lib/benchmark.ts';
import { table } from '../lib/markdown.ts';
import { bottleneck, contentionNote, type CpuWindow, cpuWindow, NAMES, pct, type WsContext } from './context.ts';
import { mergeStats } from './fleet.ts';
import { facts, type Outcome, startFacts, verdictWord } from './report.ts';
import { SHOWN_ENV } from './servers.ts';
import type { PublisherStats, Target } from './shared.ts';

const TARGETS: Target[] = ['bare', 'socketio', 'parley'];
type Mode = 'fanout' | 'latency';

interface Run {
  label: string;
  target: Target;
  perSec: number;
  deliveries: number;
  p50: number;
  p99: number;
  max: number;
  cpu: CpuWindow;
  clientCpuMax: number;
  clientCpuSum: number;
  pub: PublisherStats;
  lost: number;
  connectFailed: number;
  problems: string[];
}

async function once(ctx: WsContext, mode: Mode, target: Target, label: string): Promise<Run> {
  const { opts } = ctx;
  const server = await ctx.env.server(target);
  const { fixture } = await ctx.env.parley();
  const fleet = await ctx.env.fleet();
  const publisher = await ctx.env.publisher();
  const rooms = Array.from({ length: opts.bigRoom }, () => fixture.channel);
  const conn = await fleet.connect({ target, bases: [server.base], tokens: fixture.tokens, rooms, concurrency: 100, trackCompletion: true });
  // A message is done when every process reported it reached all its subscribers; in the closed
  // loop that gives the publisher a credit back. Every posted message must get done.
  const done = new Map<number, number>();
  let completed = 0;
  const procs = fleet.split(rooms, 1).filter((b) => b.rooms.length > 0).length;
  fleet.onDone = (ns) => {
    for (const n of ns) {
      const c = (done.get(n) ?? 0) + 1;
      if (c < procs) done.set(n, c);
      else {
        done.delete(n);
        completed++;
        if (mode === 'fanout') publisher.credit(1);
      }
    }
  };
  await publisher.begin({ base: server.base, channel: fixture.channel, token: fixture.tokens[0]!, mode: mode === 'fanout' ? 'closed' : 'rate', window: opts.window, rate: opts.latencyRate });
  await sleep(opts.warmupSec * 1000);
  const stopCpu = cpuWindow([server.service.pid], [server.service.pid, publisher.pid, ...fleet.pids]);
  await fleet.measure(true);
  await sleep(opts.durationSec * 1000);
  const stats = mergeStats(await fleet.measure(false));
  const cpu = stopCpu();
  const pub = await publisher.end();
  for (let waited = 0; completed < pub.ok && waited < 10_000; waited += 50) await sleep(50);
  fleet.onDone = () => undefined;
  await fleet.close();
  await sleep(500);
  const problems = [
    ...(conn.failed ? [`${conn.failed} connections failed (${conn.errors[0] ?? ''})`] : []),
    ...(stats.lost ? [`${stats.lost} connections lost during the window (${stats.errors[0] ?? ''})`] : []),
    ...(pub.failed ? [`${pub.failed} posts failed (${pub.errors[0] ?? ''})`] : []),
    ...(stats.deliveries === 0 ? ['no delivery measured'] : []),
    ...(completed < pub.ok ? [`${pub.ok - completed} of ${pub.ok} posted messages did not reach every subscriber within 10 s`] : []),
  ];
  const r: Run = {
    label,
    target,
    perSec: stats.perSec,
    deliveries: stats.deliveries,
    p50: stats.hist.quantile(0.5),
    p99: stats.hist.quantile(0.99),
    max: stats.hist.max,
    cpu,
    clientCpuMax: stats.cpuMax,
    clientCpuSum: stats.cpuSum,
    pub,
    lost: stats.lost,
    connectFailed: conn.failed,
    problems,
  };
  ctx.log(
    `${label.padEnd(8)} ${NAMES[target].padEnd(9)} ${fmtRps(r.perSec).padStart(8)} deliveries/s  p50 ${fmtMs(r.p50)}  p99 ${fmtMs(r.p99)}  posts ${pub.ok}` +
      `  server CPU ${pct(cpu.server)}  clients max ${pct(r.clientCpuMax)} (sum ${pct(r.clientCpuSum)})  machine ${pct(cpu.machineBusy)}  other ${pct(cpu.foreign)}${problems.length ? `  PROBLEMS: ${problems.join('; ')}` : ''}`,
  );
  return r;
}

async function measure(ctx: WsContext, mode: Mode): Promise<{ runs: Run[]; started: Date; loadBefore: number[] }> {
  const { started, loadBefore } = startFacts();
  const runs: Run[] = [];
  for (const t of TARGETS) await ctx.env.server(t);
  ctx.log(`${mode}: ${ctx.opts.bigRoom} subscribers in one room, ${ctx.opts.processes} load processes, ${ctx.opts.rounds} rounds × ${ctx.opts.durationSec} s (+${ctx.opts.warmupSec} s warm-up) per target`);
  for (let i = 1; i <= ctx.opts.rounds; i++) for (const t of TARGETS) runs.push(await once(ctx, mode, t, `round ${i}`));
  return { runs, started, loadBefore };
}

const med = (runs: Run[], t: Target, f: (r: Run) => number) => median(runs.filter((r) => r.target === t).map(f));

function runTable(runs: Run[], cores: number): string {
  return table(
    ['run', 'target', 'deliveries/s', 'p50', 'p99', 'max', 'posts ok', 'server CPU', 'load processes CPU (max / sum)', 'publisher CPU', 'other CPU', 'limited by', 'problems'],
    runs.map((r) => [
      r.label,
      NAMES[r.target],
      fmtRps(r.perSec),
      fmtMs(r.p50),
      fmtMs(r.p99),
      fmtMs(r.max),
      String(r.pub.ok),
      pct(r.cpu.server),
      `${pct(r.clientCpuMax)} / ${pct(r.clientCpuSum)}`,
      pct(r.pub.cpu),
      pct(r.cpu.foreign),
      bottleneck(r.cpu, r.clientCpuMax, cores),
      r.problems.join('; ') || '—',
    ]),
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'l'],
  );
}

function setup(ctx: WsContext): string {
  const o = ctx.opts;
  return `How it is set up:

- Three servers, each its own process, in the same run: **Parley** started exactly as \`npm start\` does, SQLite in a temp dir; environment \`${SHOWN_ENV}\` (rate limiter on at a limit never reached; the send, WebSocket connect and WebSocket message limits off). **Bare ws** (\`bench/ws/bare-ws-server.ts\`): \`ws\` on \`node:http\`, no compression (as Parley), a room is a \`Set\` of sockets, broadcast = the frame serialized and encoded once and \`send()\` as a text frame to every socket (one write per socket and message, no coalescing; Parley's gateway corks each socket and flushes once per event-loop turn, so frames of several messages can share one write). **Socket.IO** (\`bench/ws/socketio-server.ts\`): WebSocket transport only, \`socket.join(room)\` / \`io.to(room).emit('message', frameText)\`. The baselines build each message from the message Parley answered (new id, seq, body, times), so frames have the same shape and size; they check only that a token is present.
- ${o.bigRoom.toLocaleString('en-US')} client connections in ${o.processes} load processes (\`bench/ws/load-client.ts\`), ${5} benchmark users reused round-robin (about ${Math.round(o.bigRoom / 5)} connections per user), all subscribed to one public channel. Parley clients connect to \`/ws?token=<access token>\`, wait for \`hello\`, send \`subscribe\` and wait for its \`ack\`; same protocol on the bare server; Socket.IO clients use \`socket.io-client\` (WebSocket transport).
- Messages are posted through the HTTP API (\`POST /api/v1/channels/<id>/messages\`, keep-alive) by a separate publisher process (\`bench/ws/publisher.ts\`); Parley authenticates, validates, persists and publishes each one. Each body carries the message number and the send time (\`performance.timeOrigin + performance.now()\` before the request is written); a client finds them by a byte search in the frame. A delivery = one \`message\` frame received by one connection; latency = receive time − send time (same machine clock), merged over all connections in a log histogram (~2 % buckets).
- CPU: server = its process's CPU time over the window (/proc), as a share of one core; load processes report their own \`process.cpuUsage()\`; "other CPU" = share of the machine used by processes outside the benchmark. A load process near 100 % of a core means the clients, not the server, set the figure ("limited by").`;
}

export async function fanout(ctx: WsContext): Promise<Outcome> {
  const { runs, started, loadBefore } = await measure(ctx, 'fanout');
  const f = (t: Target) => med(runs, t, (r) => r.perSec);
  const rBare = f('parley') / f('bare');
  const rSio = f('parley') / f('socketio');
  const problems = runs.filter((r) => r.problems.length).map((r) => `${r.label} ${NAMES[r.target]}: ${r.problems.join('; ')}`);
  const failure = problems.length ? problems.join(' | ') : undefined;
  const status: Outcome['status'] = failure ? 'failed' : rBare >= 1 && rSio >= 1.2 ? 'met' : 'not met';
  const clientBound = runs.filter((r) => r.clientCpuMax >= 0.9).map((r) => `${r.label} ${NAMES[r.target]}`);
  const o = ctx.opts;
  const summary = [
    `fanout: ${o.bigRoom} subscribers, median of ${o.rounds} × ${o.durationSec} s`,
    ...(['bare', 'socketio', 'parley'] as const).map((t) => `  ${NAMES[t].padEnd(9)} ${fmtRps(f(t))} deliveries/s, p99 ${fmtMs(med(runs, t, (r) => r.p99))}`),
    `  Parley / bare ${rBare.toFixed(2)}× (goal ≥ 1.0×), Parley / Socket.IO ${rSio.toFixed(2)}× (goal ≥ 1.2×): ${status.toUpperCase()}${failure ? ` (${failure})` : ''}`,
    ...(clientBound.length ? [`  client-bound runs: ${clientBound.join(', ')}`] : []),
  ].join('\n');
  const markdown = `## WebSocket fan-out: one room of ${o.bigRoom.toLocaleString('en-US')} subscribers, messages posted through the API

Goal (issue): deliveries per second at saturation **≥ 1.0× bare ws and ≥ 1.2× Socket.IO**, baselines re-measured in the same run.

Result: Parley ${fmtRps(f('parley'))} deliveries/s; bare ws ${fmtRps(f('bare'))}; Socket.IO ${fmtRps(f('socketio'))} → **${rBare.toFixed(2)}×** bare, **${rSio.toFixed(2)}×** Socket.IO — goal ${verdictWord(status, failure)}.
${contentionNote(runs.map((r) => r.cpu))}${clientBound.length ? `\n**The load processes were the bottleneck** in ${clientBound.length} of ${runs.length} runs (${clientBound.join(', ')}): at least one load process used ≥ 90 % of a core, so those figures are lower bounds of what the server could deliver.\n` : ''}
${table(
  [`median of ${o.rounds} rounds`, 'bare ws', 'Socket.IO', 'Parley', 'Parley / bare', 'Parley / Socket.IO'],
  [
    ['deliveries/s', fmtRps(f('bare')), fmtRps(f('socketio')), fmtRps(f('parley')), `${rBare.toFixed(2)}×`, `${rSio.toFixed(2)}×`],
    ...(['p50', 'p99'] as const).map((k) => [`${k} post → receive`, ...(['bare', 'socketio', 'parley'] as const).map((t) => fmtMs(med(runs, t, (r) => r[k]))), '', '']),
  ],
  ['l', 'r', 'r', 'r', 'r', 'r'],
)}

${facts(ctx, started, loadBefore, 'fanout', [(await ctx.env.parley()).server.code])}
- Protocol: per round and target: connect and subscribe, ${o.warmupSec} s of load (not counted), ${o.durationSec} s measured, disconnect; ${o.rounds} rounds alternating bare ws, Socket.IO, Parley; medians over the rounds. The publisher keeps **${o.window} messages in flight** (closed loop: a credit comes back when a message has reached every subscriber), so the server always has work queued while the backlog stays bounded. A failed connection or post, a connection lost during the window, or a posted message that did not reach every subscriber marks the benchmark failed.

${runTable(runs, ctx.machine.cores)}

${setup(ctx)}
`;
  return { status, summary, markdown };
}

export async function latency(ctx: WsContext): Promise<Outcome> {
  const { runs, started, loadBefore } = await measure(ctx, 'latency');
  const p99 = (t: Target) => med(runs, t, (r) => r.p99);
  const ratio = p99('parley') / p99('bare');
  const problems = runs.filter((r) => r.problems.length).map((r) => `${r.label} ${NAMES[r.target]}: ${r.problems.join('; ')}`);
  const failure = problems.length ? problems.join(' | ') : undefined;
  const status: Outcome['status'] = failure ? 'failed' : ratio <= 1.2 ? 'met' : 'not met';
  const o = ctx.opts;
  const summary = [
    `latency: ${o.latencyRate} msg/s to ${o.bigRoom} subscribers, median of ${o.rounds} × ${o.durationSec} s`,
    ...(['bare', 'socketio', 'parley'] as const).map((t) => `  ${NAMES[t].padEnd(9)} p50 ${fmtMs(med(runs, t, (r) => r.p50))}, p99 ${fmtMs(p99(t))}`),
    `  Parley p99 / bare p99 ${ratio.toFixed(2)}× (goal ≤ 1.2×): ${status.toUpperCase()}${failure ? ` (${failure})` : ''}`,
  ].join('\n');
  const markdown = `## WebSocket big-room latency: ${o.latencyRate} messages/s to ${o.bigRoom.toLocaleString('en-US')} subscribers

Goal (issue): p99 from posting a message to a subscriber receiving it **≤ 1.2× bare ws**, same run.

Result: Parley p99 ${fmtMs(p99('parley'))} vs bare ws ${fmtMs(p99('bare'))} = **${ratio.toFixed(2)}×** — goal ${verdictWord(status, failure)} (Socket.IO p99 ${fmtMs(p99('socketio'))}, for reference).
${contentionNote(runs.map((r) => r.cpu))}
${table(
  [`median of ${o.rounds} rounds`, 'bare ws', 'Socket.IO', 'Parley', 'Parley / bare'],
  (['p50', 'p99', 'max'] as const).map((k) => [k, ...(['bare', 'socketio', 'parley'] as const).map((t) => fmtMs(med(runs, t, (r) => r[k]))), `${(med(runs, 'parley', (r) => r[k]) / med(runs, 'bare', (r) => r[k])).toFixed(2)}×`]),
  ['l', 'r', 'r', 'r', 'r'],
)}

The latency is measured from just before the publisher writes the HTTP request to the client's \`message\` event, so for Parley it includes the HTTP request, authentication, the database write and the fan-out; for the baselines only the HTTP request and the fan-out.

${facts(ctx, started, loadBefore, 'latency', [(await ctx.env.parley()).server.code])}
- Protocol: per round and target: connect and subscribe, ${o.warmupSec} s of load (not counted), ${o.durationSec} s measured (${Math.round(o.latencyRate * o.durationSec)} messages, ${(o.latencyRate * o.durationSec * o.bigRoom).toLocaleString('en-US')} deliveries), disconnect; ${o.rounds} rounds alternating bare ws, Socket.IO, Parley; medians over the rounds of each run's p50/p99/max. The publisher sends on schedule (open loop), whatever the answers. A failed connection or post, a lost connection, or a posted message that did not reach every subscriber marks the benchmark failed.

${runTable(runs, ctx.machine.cores)}

${setup(ctx)}
`;
  return { status, summary, markdown };
}
