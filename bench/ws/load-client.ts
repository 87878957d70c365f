/**
 * A load-generator process of the WebSocket benchmark, driven by bench/ws/run.ts over IPC
 * (bench/ws/shared.ts has the commands). It opens many client connections to Parley, the bare
 * `ws` server or the Socket.IO server, subscribes them, counts the `message` frames they receive
 * (a delivery = one message frame received by one connection) with their latency (send time
 * embedded in the body, see shared.ts), sends messages over the sockets at a given rate, and
 * reports its own CPU use so the harness can tell when the clients were the bottleneck.
 *
 * Message frames are recognized by their first bytes and the send time is found by a byte search,
 * without JSON-parsing the frame (Socket.IO's client parses its packets itself; that cost is part
 * of Socket.IO).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type Conn, openSio, openWs, type SocketEvents } from './client-socket.ts';
import { type ClientCommand, type ClientEvent, type ClientStats, Histogram, maxOpenFiles, messageBody, nowMs, parseMark, type Target } from './shared.ts';

const send = (e: ClientEvent) => process.send!(e);
let target: Target = 'parley';
let base = '';
let tokens: string[] = [];
let conns: Conn[] = [];
let trackCompletion = false;
const completion = new Map<number, number>();
const doneQueue: number[] = [];

// Window counters.
let measuring = false;
let deliveries = 0;
let otherFrames = 0;
let lost = 0;
let hist = new Histogram();
let errors: string[] = [];
let windowStart = { wall: 0, cpu: process.cpuUsage() };
/** Pending request ids (subscribe, send, resume) → resolver. */
const waiting = new Map<string, (frame: { type: string; payload?: any }) => void>();
let replayed = 0;

const note = (msg: string) => {
  if (errors.length < 10) errors.push(msg);
};

function onDelivery(conn: Conn, markText: string, seq: number | undefined, isReplay: boolean): void {
  const mark = parseMark(markText);
  if (seq !== undefined && conn.room !== null && seq > conn.lastSeq) conn.lastSeq = seq;
  if (isReplay) replayed++;
  if (!mark) return;
  if (measuring) {
    deliveries++;
    hist.record(nowMs() - mark.t);
  }
  if (trackCompletion) {
    const c = (completion.get(mark.n) ?? 0) + 1;
    if (c >= subscribedCount) {
      completion.delete(mark.n);
      if (doneQueue.push(mark.n) === 1) setImmediate(() => send({ ev: 'done', ns: doneQueue.splice(0) }));
    } else completion.set(mark.n, c);
  }
}
let subscribedCount = 0;

function onControl(text: string): void {
  let f: { type: string; id?: string; payload?: any };
  try {
    f = JSON.parse(text) as typeof f;
  } catch {
    return note(`unparsable frame: ${text.slice(0, 80)}`);
  }
  if (measuring) otherFrames++;
  const w = f.id !== undefined ? waiting.get(f.id) : undefined;
  if (w) w(f);
}

const events: SocketEvents = {
  delivery: onDelivery,
  control: onControl,
  ack: (id, answer) => waiting.get(id)?.({ type: 'ack', payload: answer }),
  lost: (_conn, why) => {
    lost++;
    note(why);
  },
};

let requestSeq = 0;
/** Sends a request and waits for its ack (or error). */
function request(conn: Conn, type: string, channelId: string, fields: Record<string, unknown>, timeoutMs = 60_000): Promise<{ type: string; payload?: any }> {
  const id = `r${++requestSeq}`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(id);
      reject(new Error(`${type} not answered within ${timeoutMs} ms`));
    }, timeoutMs);
    waiting.set(id, (f) => {
      clearTimeout(timer);
      waiting.delete(id);
      if (f.type === 'ack' && !(f.payload && typeof f.payload === 'object' && 'error' in f.payload)) resolve(f);
      else reject(new Error(`${type}: ${JSON.stringify(f.payload).slice(0, 200)}`));
    });
    conn.send(type, id, channelId, fields);
  });
}

/** Opens (and subscribes) one connection; resolves with it, or rejects. */
function openOne(i: number, room: string | null, localAddress: string): Promise<Conn> {
  const token = tokens[i % tokens.length]!;
  const open = target === 'socketio' ? openSio : openWs;
  return new Promise<Conn>((resolve, reject) => {
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      reject(new Error(why));
    };
    const timer = setTimeout(() => fail('no hello within 60 s'), 60_000);
    open(base, i, token, room, localAddress, events, (conn) => {
      clearTimeout(timer);
      if (room === null) {
        settled = true;
        return resolve(conn);
      }
      request(conn, 'subscribe', room, {}).then(
        (ack) => {
          if (typeof ack.payload?.seq === 'number') conn.lastSeq = ack.payload.seq;
          settled = true;
          resolve(conn);
        },
        (err: Error) => fail(err.message),
      );
    }, fail);
  });
}

/** Runs `count` jobs with at most `concurrency` at once. */
async function pool(count: number, concurrency: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await job(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

async function connect(c: Extract<ClientCommand, { cmd: 'connect' }>): Promise<ClientEvent> {
  ({ target, base, tokens, trackCompletion } = c);
  const started = nowMs();
  const opened: Conn[] = [];
  let failed = 0;
  const errs: string[] = [];
  await pool(c.rooms.length, c.concurrency, async (i) => {
    try {
      opened.push(await openOne(i, c.rooms[i]!, c.localAddress));
    } catch (err) {
      failed++;
      if (errs.length < 5) errs.push((err as Error).message);
    }
  });
  conns = opened.sort((a, b) => a.i - b.i);
  subscribedCount = conns.filter((x) => x.room !== null).length;
  return { ev: 'connected', rid: c.rid, ok: opened.length, failed, ms: nowMs() - started, errors: errs };
}

function stats(): ClientStats {
  const cpu = process.cpuUsage(windowStart.cpu);
  const wallMs = nowMs() - windowStart.wall;
  return { deliveries, otherFrames, latency: hist.toData(), cpu: (cpu.user + cpu.system) / 1000 / wallMs, wallMs, rssBytes: process.memoryUsage.rss(), lost, errors };
}

function resetWindow(): void {
  deliveries = otherFrames = lost = 0;
  hist = new Histogram();
  errors = [];
  windowStart = { wall: nowMs(), cpu: process.cpuUsage() };
}

/** Sends `ratePerSec` messages per second over the sockets for `durationMs`, each from the next room in turn. */
async function sendLoad(c: Extract<ClientCommand, { cmd: 'send' }>): Promise<ClientEvent> {
  // Interleave rooms: the k-th connection of every room, then the (k+1)-th...
  const byRoom = new Map<string, Conn[]>();
  for (const x of conns) if (x.room !== null) (byRoom.get(x.room) ?? byRoom.set(x.room, []).get(x.room)!).push(x);
  const senders: Conn[] = [];
  for (let k = 0; senders.length < subscribedCount; k++) for (const list of byRoom.values()) if (list[k]) senders.push(list[k]!);
  if (senders.length === 0) return { ev: 'sent', rid: c.rid, sent: 0, acked: 0, failed: 0, errors: ['no subscribed connection'] };
  let sent = 0;
  let acked = 0;
  let failed = 0;
  const errs: string[] = [];
  const inflight = new Set<Promise<void>>();
  const start = nowMs();
  while (nowMs() - start < c.durationMs) {
    const due = Math.floor(((nowMs() - start) / 1000) * c.ratePerSec);
    while (sent < due) {
      const conn = senders[sent % senders.length]!;
      const p: Promise<void> = request(conn, 'send_message', conn.room!, { payload: { body: messageBody(sent, nowMs()) } }, 30_000).then(
        () => void acked++,
        (err: Error) => {
          failed++;
          if (errs.length < 5) errs.push(err.message);
        },
      );
      sent++;
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }
    await sleep(1);
  }
  await Promise.all(inflight);
  return { ev: 'sent', rid: c.rid, sent, acked, failed, errors: errs };
}

/** Reconnect storm: every connection again at once, resubscribing with since_seq = the last seq it saw. */
async function storm(c: Extract<ClientCommand, { cmd: 'storm' }>): Promise<ClientEvent> {
  const before = conns;
  const started = nowMs();
  const opened: Conn[] = [];
  let failed = 0;
  const errs: string[] = [];
  replayed = 0;
  await pool(before.length, c.concurrency, async (k) => {
    const old = before[k]!;
    try {
      const conn = await new Promise<Conn>((resolve, reject) => {
        openWs(base, old.i, tokens[old.i % tokens.length]!, old.room, c.localAddress, events, resolve, (why) => reject(new Error(why)));
      });
      conn.lastSeq = old.lastSeq;
      if (old.room !== null) await request(conn, 'subscribe', old.room, { since_seq: old.lastSeq }, 60_000);
      opened.push(conn);
    } catch (err) {
      failed++;
      if (errs.length < 5) errs.push((err as Error).message);
    }
  });
  conns = opened;
  return { ev: 'stormed', rid: c.rid, ok: opened.length, failed, ms: nowMs() - started, replayed, errors: errs };
}

async function handle(c: ClientCommand): Promise<ClientEvent> {
  switch (c.cmd) {
    case 'connect':
      return connect(c);
    case 'measure':
      if (c.on) {
        resetWindow();
        measuring = true;
        return { ev: 'stats', rid: c.rid, stats: stats() };
      }
      measuring = false;
      return { ev: 'stats', rid: c.rid, stats: stats() };
    case 'send':
      return sendLoad(c);
    case 'drop':
      for (const x of conns) x.close();
      return { ev: 'dropped', rid: c.rid };
    case 'storm':
      return storm(c);
    case 'close':
      for (const x of conns) x.close();
      conns = [];
      completion.clear();
      return { ev: 'closed', rid: c.rid };
  }
}

process.on('message', (c: ClientCommand) => {
  handle(c).then(send, (err: unknown) => send({ ev: 'error', rid: c.rid, message: err instanceof Error ? (err.stack ?? err.message) : String(err) }));
});
process.on('disconnect', () => process.exit(0));
send({ ev: 'ready', maxOpenFiles: await maxOpenFiles() });
