/**
 * Scenario "connect": how fast connections are accepted, and a reconnect storm with resume.
 *
 * - Connect rate: the load processes open connections (each: TCP + upgrade + token check + the
 *   server's `hello`) with a fixed number in progress; rate = connections / time to the last
 *   `hello`. Goal (issue): Parley ≥ 0.8× bare ws.
 * - Reconnect storm (Parley only): N clients subscribed to 100 channels drop at once, a message is
 *   posted to every channel meanwhile, then all reconnect at once and resubscribe with
 *   `since_seq`; done when every client has its missed message replayed and its `ack`.
 *   Goal (issue): 10,000 clients done in < 10 s.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { fmtRps, median } from '../lib/benchmark.ts';
import { table } from '../lib/markdown.ts';
import { bottleneck, contentionNote, type CpuWindow, cpuWindow, NAMES, pct, type WsContext } from './context.ts';
import { mergeStats, nextSourceAddress, sum } from './fleet.ts';
import { facts, type Outcome, startFacts, verdictWord } from './report.ts';
import { api, createChannels, SHOWN_ENV } from './servers.ts';
import type { ClientEvent, Target } from './shared.ts';

const TARGETS: Target[] = ['bare', 'socketio', 'parley'];
const CONCURRENCY = 100;
const STORM_CHANNELS = 100;

interface ConnectRun {
  label: string;
  target: Target;
  ok: number;
  failed: number;
  rate: number;
  cpu: CpuWindow;
  clientCpuMax: number;
  errors: string[];
}

interface StormRun {
  label: string;
  ok: number;
  failed: number;
  ms: number;
  replayed: number;
  errors: string[];
}

async function connectOnce(ctx: WsContext, target: Target, label: string): Promise<ConnectRun> {
  const server = await ctx.env.server(target);
  const { fixture } = await ctx.env.parley();
  const fleet = await ctx.env.fleet();
  const rooms = Array.from({ length: ctx.opts.connects }, () => null);
  await fleet.measure(true);
  const stopCpu = cpuWindow([server.service.pid], [server.service.pid, ...fleet.pids]);
  const c = await fleet.connect({ target, bases: [server.base], tokens: fixture.tokens, rooms, concurrency: CONCURRENCY });
  const cpu = stopCpu();
  const stats = mergeStats(await fleet.measure(false));
  await fleet.close();
  await sleep(1000);
  const r: ConnectRun = { label, target, ok: c.ok, failed: c.failed, rate: (c.ok / c.ms) * 1000, cpu, clientCpuMax: stats.cpuMax, errors: c.errors };
  ctx.log(`${label.padEnd(8)} ${NAMES[target].padEnd(9)} ${fmtRps(r.rate).padStart(6)} connections/s (${c.ok} ok, ${c.failed} failed)  server CPU ${pct(cpu.server)}  clients max ${pct(r.clientCpuMax)}  other ${pct(cpu.foreign)}`);
  return r;
}

async function stormOnce(ctx: WsContext, channels: string[], label: string): Promise<StormRun> {
  const { server, fixture } = await ctx.env.parley();
  const fleet = await ctx.env.fleet();
  const n = ctx.opts.idle;
  const rooms = Array.from({ length: n }, (_, i) => channels[i % channels.length]!);
  const c = await fleet.connect({ target: 'parley', bases: [server.base], tokens: fixture.tokens, rooms, concurrency: 200 });
  const postAll = async (text: string) => {
    for (let i = 0; i < channels.length; i += 10) {
      await Promise.all(channels.slice(i, i + 10).map((ch) => api(server.base, 'POST', `/api/v1/channels/${ch}/messages`, fixture.tokens[0]!, { body: text }, 201)));
    }
  };
  await postAll('before the storm');
  await sleep(1000);
  await fleet.all({ cmd: 'drop' });
  await sleep(2000);
  await postAll('while disconnected');
  const perProcess = Math.ceil(n / ctx.opts.processes);
  const replies = await fleet.all<Extract<ClientEvent, { ev: 'stormed' }>>({ cmd: 'storm', concurrency: perProcess, localAddress: nextSourceAddress() });
  const r: StormRun = {
    label,
    ok: sum(replies.map((x) => x.ok)),
    failed: sum(replies.map((x) => x.failed)) + c.failed,
    ms: Math.max(...replies.map((x) => x.ms)),
    replayed: sum(replies.map((x) => x.replayed)),
    errors: [...c.errors, ...replies.flatMap((x) => x.errors)].slice(0, 5),
  };
  await fleet.close();
  await sleep(2000);
  ctx.log(`${label.padEnd(8)} storm: ${r.ok} of ${n} reconnected and resumed in ${(r.ms / 1000).toFixed(2)} s, ${r.replayed} messages replayed, ${r.failed} failed${r.errors.length ? ` (${r.errors[0]})` : ''}`);
  return r;
}

export async function connectRate(ctx: WsContext): Promise<Outcome> {
  const { started, loadBefore } = startFacts();
  const o = ctx.opts;
  for (const t of TARGETS) await ctx.env.server(t);
  ctx.log(`connect: ${o.connects} connections per round and target, ${CONCURRENCY} at a time per load process (${o.processes} processes)`);
  // One uncounted round per target first: a server's first round ran at about half the rate of
  // the later ones (its code not compiled yet), for every target alike.
  for (const t of TARGETS) await connectOnce(ctx, t, 'warm-up');
  const runs: ConnectRun[] = [];
  for (let i = 1; i <= o.rounds; i++) for (const t of TARGETS) runs.push(await connectOnce(ctx, t, `round ${i}`));
  const { server, fixture } = await ctx.env.parley();
  ctx.log(`storm: ${o.idle} clients in ${STORM_CHANNELS} channels`);
  const channels = await createChannels(server.base, fixture, 'ws-storm', STORM_CHANNELS, false);
  const storms: StormRun[] = [];
  for (let i = 1; i <= o.rounds; i++) storms.push(await stormOnce(ctx, channels, `round ${i}`));

  const rate = (t: Target) => median(runs.filter((r) => r.target === t).map((r) => r.rate));
  const ratio = rate('parley') / rate('bare');
  const stormMs = median(storms.map((s) => s.ms));
  const problems = [
    ...runs.filter((r) => r.failed).map((r) => `${r.label} ${NAMES[r.target]}: ${r.failed} connections failed (${r.errors[0] ?? ''})`),
    ...storms.filter((s) => s.failed || s.replayed < s.ok).map((s) => `storm ${s.label}: ${s.failed} failed, ${s.replayed} replayed for ${s.ok} clients (${s.errors[0] ?? ''})`),
  ];
  const failure = problems.length ? problems.join('; ') : undefined;
  const metRate = ratio >= 0.8;
  const metStorm = stormMs < 10_000 && o.idle >= 10_000;
  const status: Outcome['status'] = failure ? 'failed' : metRate && metStorm ? 'met' : 'not met';
  const clientBound = runs.filter((r) => r.clientCpuMax >= 0.9);
  const summary = [
    `connect: ${o.connects} connections per round, median of ${o.rounds}`,
    ...TARGETS.map((t) => `  ${NAMES[t].padEnd(9)} ${fmtRps(rate(t))} connections/s`),
    `  Parley / bare ${ratio.toFixed(2)}× (goal ≥ 0.8×): ${metRate ? 'met' : 'NOT MET'}`,
    `  reconnect storm of ${o.idle} with resume: ${(stormMs / 1000).toFixed(2)} s (goal < 10 s with 10,000): ${metStorm ? 'met' : 'NOT MET'}`,
    ...(failure ? [`  FAILED: ${failure}`] : []),
  ].join('\n');
  const markdown = `## WebSocket connect rate with token check, and a reconnect storm with resume

Goals (issue): connect rate with token check **≥ 0.8× bare ws**; a reconnect storm of **10,000 clients with resume done in < 10 s**.

Result: Parley ${fmtRps(rate('parley'))} connections/s vs bare ws ${fmtRps(rate('bare'))} = **${ratio.toFixed(2)}×** (Socket.IO ${fmtRps(rate('socketio'))}) — ${metRate ? '**met**' : '**not met**'}. Reconnect storm of ${o.idle.toLocaleString('en-US')} clients with resume: **${(stormMs / 1000).toFixed(2)} s** (median) — ${metStorm ? '**met**' : o.idle < 10_000 ? '**not measured at 10,000**' : '**not met**'}. Overall: ${verdictWord(status, failure)}.
${contentionNote(runs.map((r) => r.cpu))}${clientBound.length ? `\n**The load processes were the bottleneck** in ${clientBound.length} of ${runs.length} connect runs (a load process at ≥ 90 % of a core): those rates are lower bounds.\n` : ''}
${table(
  [`median of ${o.rounds} rounds`, 'bare ws', 'Socket.IO', 'Parley', 'Parley / bare'],
  [['connections/s', fmtRps(rate('bare')), fmtRps(rate('socketio')), fmtRps(rate('parley')), `${ratio.toFixed(2)}×`]],
  ['l', 'r', 'r', 'r', 'r'],
)}

${facts(ctx, started, loadBefore, 'connect', [server.code])}
- Connect rate protocol: per round and target ${o.connects.toLocaleString('en-US')} connections opened by ${o.processes} load processes, ${CONCURRENCY} in progress per process; a connection counts when the server's \`hello\` has arrived (Parley: after the token was checked and the connection registered; the bare server checks that a token is present; Socket.IO: handshake with \`auth.token\`, middleware, \`hello\` event). Rate = connections / time from the first connect to the last \`hello\` (slowest process). Then all are closed and 1 s passes. First one warm-up round per target, the same but not counted (a server's first round ran at about half the rate of its later ones, whatever the server: its code was not compiled yet); then ${o.rounds} rounds alternating bare ws, Socket.IO, Parley; medians. Parley checks the token of one of the 5 benchmark users in turn; its credential cache (\`AUTH_CACHE_TTL_MS\`, 30 s by default) means most checks verify the token's signature and reuse the session lookup.
- Storm protocol (Parley only): ${o.idle.toLocaleString('en-US')} connections subscribed to ${STORM_CHANNELS} public channels (${Math.round(o.idle / STORM_CHANNELS)} each); one message posted to every channel; all connections dropped by the clients at once; 2 s later one more message posted to every channel; then every client reconnects at once (all of a load process's connections started together) and sends \`subscribe\` with \`since_seq\` = the last seq it saw. A client is done when its \`ack\` came (Parley sends the replayed messages before it); time = from the reconnect command to the last \`ack\`. Every client must get its missed message replayed.

${table(
  ['run', 'target', 'connections/s', 'ok', 'failed', 'server CPU', 'load process CPU (max)', 'other CPU', 'limited by'],
  runs.map((r) => [r.label, NAMES[r.target], fmtRps(r.rate), String(r.ok), String(r.failed), pct(r.cpu.server), pct(r.clientCpuMax), pct(r.cpu.foreign), bottleneck(r.cpu, r.clientCpuMax, ctx.machine.cores)]),
  ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
)}

${table(
  ['storm', 'clients resumed', 'failed', 'messages replayed', 'time to the last ack'],
  storms.map((s) => [s.label, s.ok.toLocaleString('en-US'), String(s.failed), s.replayed.toLocaleString('en-US'), `${(s.ms / 1000).toFixed(2)} s`]),
  ['l', 'r', 'r', 'r', 'r'],
)}

Parley environment: \`${SHOWN_ENV}\`.
`;
  return { status, summary, markdown };
}
