/**
 * What the two baseline servers (bare `ws`, Socket.IO) share: their configuration from the
 * environment, the HTTP side (health, posting a message) and messages built like Parley's.
 *
 * A message is Parley's own message object (one answered by Parley, read from
 * BENCH_WS_TEMPLATE_FILE) with a new id, seq, body and times, so the frame a client receives has
 * the same shape and about the same size as Parley's; it is serialized once per message and the
 * same text is sent to every subscriber.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface BaselineConfig {
  port: number;
  host: string;
  template: Record<string, unknown>;
}

export function baselineConfig(name: string): BaselineConfig {
  const need = (k: string): string => {
    const v = process.env[k];
    if (!v) {
      process.stderr.write(`${name}: ${k} is required\n`);
      process.exit(2);
    }
    return v;
  };
  return {
    port: Number(need('BENCH_WS_PORT')),
    host: process.env.BENCH_WS_HOST ?? '127.0.0.1',
    template: JSON.parse(readFileSync(need('BENCH_WS_TEMPLATE_FILE'), 'utf8')) as Record<string, unknown>,
  };
}

/** Builds message frames: per room a seq counter, like a conversation's. */
export class MessageFactory {
  readonly #seq = new Map<string, number>();
  constructor(private readonly template: Record<string, unknown>) {}

  /** The message object and its `message` frame text (`{type, channel_id, payload, timestamp, seq}`). */
  build(channelId: string, body: string): { message: Record<string, unknown>; frame: string } {
    const seq = (this.#seq.get(channelId) ?? 0) + 1;
    this.#seq.set(channelId, seq);
    const now = new Date().toISOString();
    const message = { ...this.template, id: randomUUID(), conversation_id: channelId, seq, body, created_at: now, updated_at: now };
    const frame = JSON.stringify({ type: 'message', channel_id: channelId, payload: message, timestamp: now, seq });
    return { message, frame };
  }

  seq(channelId: string): number {
    return this.#seq.get(channelId) ?? 0;
  }
}

export const envelope = (type: string, payload: unknown, channelId?: string, id?: string): string =>
  JSON.stringify({ type, ...(channelId === undefined ? {} : { channel_id: channelId }), payload, timestamp: new Date().toISOString(), ...(id === undefined ? {} : { id }) });

const POST_RE = /^\/api\/v1\/channels\/([0-9a-f-]{36})\/messages$/;

/**
 * The HTTP side: `GET /health`, and `POST /api/v1/channels/:id/messages` (`{"body": "..."}`, with a
 * non-empty bearer token), which builds the message, hands it to `broadcast` and answers 201 with it.
 */
export function httpServer(factory: MessageFactory, broadcast: (channelId: string, frame: string) => void): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'GET' && req.url === '/health') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    const m = req.method === 'POST' ? POST_RE.exec(req.url ?? '') : null;
    if (!m) return void res.writeHead(404).end();
    if (!/^Bearer \S+/.test(req.headers.authorization ?? '')) return void res.writeHead(401).end();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: unknown;
      try {
        body = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { body?: unknown }).body;
      } catch {
        body = undefined;
      }
      if (typeof body !== 'string') return void res.writeHead(400).end();
      const { message, frame } = factory.build(m[1]!, body);
      broadcast(m[1]!, frame);
      res.writeHead(201, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(message));
    });
  });
}

/** SIGTERM/SIGINT: close, then exit. */
export function exitOnSignal(close: () => Promise<void>): void {
  const stop = () => {
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
