/**
 * One client connection of the WebSocket benchmark's load processes: plain `ws` speaking Parley's
 * protocol (Parley and the bare server), or `socket.io-client` (the Socket.IO server). `message`
 * frames are recognized by their first bytes and their benchmark mark is cut out by a byte
 * search, without JSON-parsing the frame; other frames go to `control` as text.
 */
import { io } from 'socket.io-client';
import { WebSocket } from 'ws';
import { MARK } from './shared.ts';

const MESSAGE_PREFIX = Buffer.from('{"type":"message",');
const MARK_BUF = Buffer.from(MARK);
const SEQ_BUF = Buffer.from(',"seq":');

export interface Conn {
  i: number;
  room: string | null;
  /** Last event seq seen on the room (for resume). */
  lastSeq: number;
  /** Sends `{type, id, channel_id, ...fields}` (Socket.IO: emits `type` with `{channel_id, ...fields}` and an ack). */
  send(type: string, id: string, channelId: string, fields: Record<string, unknown>): void;
  close(): void;
  closedByUs: boolean;
}

/** What a connection reports to its load process. */
export interface SocketEvents {
  /** A `message` frame: the text after the mark (up to 40 characters, '' without one), its envelope seq, and whether it is a replay. */
  delivery(conn: Conn, markText: string, seq: number | undefined, isReplay: boolean): void;
  /** Any other frame, as text. */
  control(text: string): void;
  /** Socket.IO: the answer to request `id`. */
  ack(id: string, answer: unknown): void;
  /** The server closed (or an error ended) a connection that was open. */
  lost(conn: Conn, why: string): void;
}

/** A connection to Parley or the bare server (plain `ws`, Parley's protocol). */
export function openWs(base: string, i: number, token: string, room: string | null, localAddress: string, ev: SocketEvents, ready: (c: Conn) => void, fail: (why: string) => void): void {
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws?token=${encodeURIComponent(token)}`, { perMessageDeflate: false, localAddress });
  const conn: Conn = {
    i,
    room,
    lastSeq: 0,
    closedByUs: false,
    send: (type, id, channelId, fields) => ws.send(JSON.stringify({ type, id, channel_id: channelId, ...fields })),
    close: () => {
      conn.closedByUs = true;
      ws.terminate();
    },
  };
  let opened = false;
  ws.on('message', (data: Buffer, isBinary) => {
    if (isBinary) return;
    if (data.length > MESSAGE_PREFIX.length && data.compare(MESSAGE_PREFIX, 0, MESSAGE_PREFIX.length, 0, MESSAGE_PREFIX.length) === 0) {
      const m = data.indexOf(MARK_BUF);
      const s = data.lastIndexOf(SEQ_BUF);
      const seq = s < 0 ? undefined : parseInt(data.toString('latin1', s + SEQ_BUF.length, s + SEQ_BUF.length + 16), 10);
      const isReplay = data.length > 16 && data.toString('latin1', data.length - 16).includes('"replayed":true');
      return ev.delivery(conn, m < 0 ? '' : data.toString('latin1', m + MARK_BUF.length, m + MARK_BUF.length + 40), seq, isReplay);
    }
    const text = data.toString();
    if (!opened && text.startsWith('{"type":"hello"')) {
      opened = true;
      return ready(conn);
    }
    ev.control(text);
  });
  // An error on an open socket is followed by its close, reported there.
  ws.on('error', (err) => (opened ? undefined : fail(err.message)));
  ws.on('close', (code, reason) => {
    if (!opened) return fail(`closed ${code} ${reason.toString()}`);
    if (!conn.closedByUs) {
      ev.lost(conn, `socket ${i} closed by the server: ${code} ${reason.toString()}`);
    }
  });
}

/** A connection to the Socket.IO server. */
export function openSio(base: string, i: number, token: string, room: string | null, localAddress: string, ev: SocketEvents, ready: (c: Conn) => void, fail: (why: string) => void): void {
  const s = io(base, { transports: ['websocket'], auth: { token }, reconnection: false, forceNew: true, localAddress } as Parameters<typeof io>[1]);
  const conn: Conn = {
    i,
    room,
    lastSeq: 0,
    closedByUs: false,
    send: (type, id, channelId, fields) => {
      s.emit(type, { channel_id: channelId, ...fields }, (answer: unknown) => ev.ack(id, answer));
    },
    close: () => {
      conn.closedByUs = true;
      s.disconnect();
    },
  };
  s.on('message', (frame: string) => {
    const m = frame.indexOf(MARK);
    ev.delivery(conn, m < 0 ? '' : frame.slice(m + MARK.length, m + MARK.length + 40), undefined, false);
  });
  s.once('hello', () => ready(conn));
  s.on('connect_error', (err) => fail(err.message));
  s.on('disconnect', (reason) => {
    if (!conn.closedByUs) {
      ev.lost(conn, `socket ${i} disconnected: ${reason}`);
    }
  });
}
