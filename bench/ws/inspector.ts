/**
 * The memory a Node process really holds, read through its inspector (the process was started
 * with `--inspect=127.0.0.1:<port>`): a full garbage collection (`HeapProfiler.collectGarbage`),
 * then `process.memoryUsage()` evaluated inside it. Used by the memory scenario beside the RSS
 * growth, which also counts garbage not yet collected and the young generation's growth.
 */
import WebSocket from 'ws';

export interface LiveMemory {
  heapUsed: number;
  external: number;
}

export class InspectorClient {
  #next = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
      if (m.id === undefined) return;
      const p = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      if (m.error) p?.reject(new Error(`inspector: ${m.error.message}`));
      else p?.resolve(m.result);
    });
  }

  /** Connects to the process whose inspector listens on `port` (waits up to 10 s for it). */
  static async connect(port: number): Promise<InspectorClient> {
    const deadline = Date.now() + 10_000;
    let targets: Array<{ webSocketDebuggerUrl: string }> = [];
    for (;;) {
      try {
        targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as typeof targets;
        if (targets.length) break;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error(`no inspector on port ${port}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new InspectorClient(ws);
  }

  call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Two full collections (the second frees what finalizers of the first released), then the heap in use and external memory. */
  async liveMemory(): Promise<LiveMemory> {
    await this.call('HeapProfiler.collectGarbage');
    await this.call('HeapProfiler.collectGarbage');
    const r = (await this.call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true })) as { result: { value: string } };
    const m = JSON.parse(r.result.value) as { heapUsed: number; external: number };
    return { heapUsed: m.heapUsed, external: m.external };
  }

  close(): void {
    this.ws.close();
  }
}
