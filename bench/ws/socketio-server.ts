/**
 * Baseline of the WebSocket benchmark: a Socket.IO server (WebSocket transport only, no
 * compression) with the same behaviour as bench/ws/bare-ws-server.ts, rooms done the Socket.IO
 * way (`socket.join(room)`, `io.to(room).emit(...)`). Started by bench/ws/run.ts as its own process:
 *
 *   BENCH_WS_PORT=<port> BENCH_WS_TEMPLATE_FILE=<Parley message JSON> node --import tsx bench/ws/socketio-server.ts
 *
 * Events: the middleware accepts a handshake with a non-empty `auth.token`; the server emits
 * `hello`; `subscribe` ({channel_id}, ack) joins the room; `send_message` ({channel_id, payload},
 * ack) broadcasts the message and acknowledges with it. The `message` event carries the frame
 * text Parley would send (serialized once per message), so clients parse the same JSON.
 * `POST /api/v1/channels/:id/messages` broadcasts the same way (answer 201).
 */
import { randomUUID } from 'node:crypto';
import { Server } from 'socket.io';
import { baselineConfig, exitOnSignal, httpServer, MessageFactory } from './baseline-common.ts';

const config = baselineConfig('socketio-server');
const factory = new MessageFactory(config.template);
const server = httpServer(factory, (room, frame) => io.to(room).emit('message', frame));
const io = new Server(server, { transports: ['websocket'], serveClient: false, perMessageDeflate: false, maxHttpBufferSize: 256 * 1024 });

io.use((socket, next) => {
  const token = (socket.handshake.auth as { token?: unknown }).token;
  next(typeof token === 'string' && token ? undefined : new Error('unauthorized'));
});

type Ack = (answer: unknown) => void;
io.on('connection', (socket) => {
  socket.on('subscribe', (m: { channel_id?: string }, ack?: Ack) => {
    if (!m?.channel_id) return ack?.({ error: 'channel_id required' });
    void socket.join(m.channel_id);
    ack?.({ channel_id: m.channel_id, seq: factory.seq(m.channel_id), replayed: 0, resync_required: false });
  });
  socket.on('send_message', (m: { channel_id?: string; payload?: { body?: string } }, ack?: Ack) => {
    if (!m?.channel_id || typeof m.payload?.body !== 'string') return ack?.({ error: 'channel_id and payload.body required' });
    const { message, frame } = factory.build(m.channel_id, m.payload.body);
    io.to(m.channel_id).emit('message', frame);
    ack?.({ message, replayed: false });
  });
  socket.emit('hello', { connection_id: randomUUID(), user_id: null, heartbeat_ms: 25_000 });
});

exitOnSignal(() => new Promise<void>((resolve) => void io.close(() => resolve())));
server.listen(config.port, config.host, () => process.stdout.write(`socketio-server listening on ${config.host}:${config.port}\n`));
