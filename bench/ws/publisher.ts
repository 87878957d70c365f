/**
 * The publisher process of the WebSocket benchmark, driven by bench/ws/run.ts over IPC: posts
 * messages through the HTTP API (`POST /api/v1/channels/:id/messages`, keep-alive connections),
 * each body carrying its number and send time (bench/ws/shared.ts).
 *
 * - `closed` mode (saturation): `window` messages in flight; the harness gives one credit back each
 *   time a message has reached every subscriber, so the server always has work queued but the
 *   backlog stays bounded (no slow-consumer cut-offs, no unbounded buffers).
 * - `rate` mode: a fixed number of messages per second, sent on schedule whatever the answers.
 */
import { Agent, request } from 'node:http';
import { Histogram, maxOpenFiles, messageBody, nowMs, type PublisherCommand, type PublisherEvent, type PublisherStats } from './shared.ts';

type Start = Extract<PublisherCommand, { cmd: 'start' }>;
const send = (e: PublisherEvent) => process.send!(e);

let cfg: Start | undefined;
let agent: Agent | undefined;
let running = false;
let credits = 0;
let n = 0;
let inflight = 0;
let stats: PublisherStats = empty();
let started = { wall: 0, cpu: process.cpuUsage() };
let hist = new Histogram();
let timer: NodeJS.Timeout | undefined;

function empty(): PublisherStats {
  return { posted: 0, ok: 0, failed: 0, errors: [], cpu: 0, wallMs: 0, latency: new Histogram().toData() };
}

function post(): void {
  const c = cfg!;
  const t = nowMs();
  const body = JSON.stringify({ body: messageBody(++n, t) });
  stats.posted++;
  inflight++;
  const url = new URL(`/api/v1/channels/${c.channel}/messages`, c.base);
  const req = request(url, { method: 'POST', agent, headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
    const chunks: Buffer[] = [];
    res.on('data', (d: Buffer) => chunks.push(d));
    res.on('end', () => {
      inflight--;
      hist.record(nowMs() - t);
      if (res.statusCode === 201) stats.ok++;
      else fail(`HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString('utf8').slice(0, 200)}`);
    });
  });
  req.setNoDelay(true);
  req.on('error', (err) => {
    inflight--;
    fail(err.message);
  });
  req.end(body);
}

function fail(why: string): void {
  stats.failed++;
  if (stats.errors.length < 5) stats.errors.push(why);
}

function start(c: Start): void {
  cfg = c;
  agent = new Agent({ keepAlive: true, maxSockets: c.mode === 'closed' ? c.window : 64 });
  stats = empty();
  hist = new Histogram();
  started = { wall: nowMs(), cpu: process.cpuUsage() };
  running = true;
  if (c.mode === 'closed') {
    credits = c.window;
    pump();
  } else {
    const t0 = nowMs();
    let sent = 0;
    // Check every millisecond which messages are due; each is sent when its time has come.
    timer = setInterval(() => {
      const due = Math.floor(((nowMs() - t0) / 1000) * c.rate) + 1;
      while (running && sent < due) {
        sent++;
        post();
      }
    }, 1);
  }
}

function pump(): void {
  while (running && credits > 0) {
    credits--;
    post();
  }
}

async function stop(): Promise<PublisherStats> {
  running = false;
  clearInterval(timer);
  const deadline = Date.now() + 30_000;
  while (inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const cpu = process.cpuUsage(started.cpu);
  const wallMs = nowMs() - started.wall;
  agent?.destroy();
  return { ...stats, cpu: (cpu.user + cpu.system) / 1000 / wallMs, wallMs, latency: hist.toData() };
}

process.on('message', (c: PublisherCommand) => {
  if (c.cmd === 'start') {
    start(c);
    send({ ev: 'started', rid: c.rid });
  } else if (c.cmd === 'credit') {
    credits += c.n;
    pump();
  } else void stop().then((s) => send({ ev: 'stopped', rid: c.rid, stats: s }));
});
process.on('disconnect', () => process.exit(0));
void maxOpenFiles().then(() => send({ ev: 'ready' }));
