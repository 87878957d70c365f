/**
 * Baseline of the WebSocket benchmark: a bare `ws` server speaking the subset of Parley's realtime
 * protocol the benchmark uses, with no authentication beyond "a token is present", no access
 * checks, no database and no bus. Started by bench/ws/run.ts as its own process:
 *
 *   BENCH_WS_PORT=<port> BENCH_WS_TEMPLATE_FILE=<Parley message JSON> node --import tsx bench/ws/bare-ws-server.ts
 *
 * - `GET /ws?token=<non-empty>` upgrades (same `ws` options as Parley: no compression); the server
 *   sends `hello`.
 * - `subscribe` adds the socket to the room and is acknowledged; `send_message` builds the message,
 *   broadcasts it to the room and acknowledges with it; `ping` → `pong`.
 * - `POST /api/v1/channels/:id/messages` does the same as `send_message` over HTTP (answer 201).
 * - Broadcast is the `ws` README's: the frame serialized and UTF-8 encoded once, `send()` as a text frame to
 *   every socket of the room (no write coalescing: one write per socket and message).
 */
import { randomUUID } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { baselineConfig, envelope, exitOnSignal, httpServer, MessageFactory } from './baseline-common.ts';

const config = baselineConfig('bare-ws-server');
const factory = new MessageFactory(config.template);
const rooms = new Map<string, Set<WebSocket>>();

function broadcast(channelId: string, frame: string): void {
  const room = rooms.get(channelId);
  if (!room) return;
  const data = Buffer.from(frame); // encoded once; every socket sends the same bytes as a text frame
  for (const ws of room) ws.send(data, { binary: false });
}

const server = httpServer(factory, broadcast);
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false, maxPayload: 256 * 1024 });

server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname !== '/ws' || !url.searchParams.get('token')) {
    socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws));
});

function onConnection(ws: WebSocket): void {
  const joined = new Set<string>();
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    let m: { type?: string; id?: string; channel_id?: string; payload?: { body?: string } };
    try {
      m = JSON.parse(data.toString()) as typeof m;
    } catch {
      return;
    }
    const room = m.channel_id;
    if (m.type === 'ping') ws.send(envelope('pong', {}, undefined, m.id));
    else if (m.type === 'subscribe' && room) {
      let set = rooms.get(room);
      if (!set) rooms.set(room, (set = new Set()));
      set.add(ws);
      joined.add(room);
      ws.send(envelope('ack', { channel_id: room, seq: factory.seq(room), replayed: 0, resync_required: false }, room, m.id));
    } else if (m.type === 'send_message' && room && typeof m.payload?.body === 'string') {
      const { message, frame } = factory.build(room, m.payload.body);
      broadcast(room, frame);
      ws.send(envelope('ack', { message, replayed: false }, room, m.id));
    } else ws.send(envelope('error', { code: 'validation.failed', message: 'unsupported' }, room, m.id));
  });
  ws.on('close', () => {
    for (const room of joined) rooms.get(room)?.delete(ws);
  });
  ws.on('error', () => ws.terminate());
  ws.send(envelope('hello', { connection_id: randomUUID(), user_id: null, heartbeat_ms: 25_000 }));
}

exitOnSignal(() => new Promise<void>((resolve) => server.close(() => resolve())));
server.listen(config.port, config.host, () => process.stdout.write(`bare-ws-server listening on ${config.host}:${config.port}\n`));
