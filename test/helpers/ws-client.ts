import { WebSocket } from 'ws';

/** A server → client frame (DESIGN.md envelope). */
export interface Frame {
  type: string;
  channel_id?: string;
  payload: any;
  timestamp: string;
  seq?: number;
  id?: string;
  replayed?: boolean;
}

/**
 * A real `ws` client for tests: keeps every frame it received, waits for the next one matching a
 * predicate, sends requests and waits for their `ack` / `error`.
 */
export class TestSocket {
  readonly frames: Frame[] = [];
  #cursor = 0;
  #waiters: Array<() => void> = [];
  #n = 0;
  closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Frame);
      for (const w of this.#waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  /** Connects; resolves once open (the server may still close it right after: see `closed`). */
  static async open(url: string, opts: { headers?: Record<string, string> } = {}): Promise<TestSocket> {
    const ws = new WebSocket(url, { headers: opts.headers });
    const s = new TestSocket(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return s;
  }

  /** Opens and waits for the server's `hello`. */
  static async connect(base: string, token: string): Promise<TestSocket> {
    const s = await TestSocket.open(`${base.replace(/^http/, 'ws')}/ws?token=${encodeURIComponent(token)}`);
    await s.next((f) => f.type === 'hello');
    return s;
  }

  /** The next frame (after those already taken) that matches; fails after `timeoutMs`. */
  async next(match: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.#cursor < this.frames.length) {
        const f = this.frames[this.#cursor++]!;
        if (match(f)) return f;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms; got: ${JSON.stringify(this.frames.map((f) => [f.type, f.seq]))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Every frame received from now on, for `ms` (used to check that nothing arrives). */
  async collect(ms: number, match: (f: Frame) => boolean = () => true): Promise<Frame[]> {
    const start = this.frames.length;
    await new Promise((r) => setTimeout(r, ms));
    return this.frames.slice(start).filter(match);
  }

  send(msg: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(msg));
  }

  /** Sends a request with an id; resolves with its `ack` frame, rejects with its `error` payload. */
  async request(msg: Record<string, unknown>): Promise<Frame> {
    const id = `r${++this.#n}`;
    const from = this.frames.length;
    this.send({ ...msg, id });
    const deadline = Date.now() + 5000;
    for (;;) {
      const f = this.frames.slice(from).find((x) => x.id === id && (x.type === 'ack' || x.type === 'error' || x.type === 'pong'));
      if (f) {
        if (f.type === 'error') throw Object.assign(new Error(`${f.payload.code}: ${f.payload.message}`), { code: f.payload.code as string });
        return f;
      }
      if (Date.now() > deadline) throw new Error(`no answer to ${JSON.stringify(msg)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  close(): Promise<{ code: number; reason: string }> {
    this.ws.close();
    return this.closed;
  }
}
