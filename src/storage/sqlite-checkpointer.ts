import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * WAL checkpoints off the request path. SQLite normally checkpoints inside the commit that pushes
 * the WAL past 1,000 pages, on the thread that committed: the request that happens to commit then
 * stalls for the copy (several ms). Instead the app's connection runs with `wal_autocheckpoint = 0`
 * and a worker thread, with its own connection to the same file, runs PASSIVE checkpoints every
 * `intervalMs`: they copy committed pages into the database file without blocking the writer.
 *
 * The WAL only starts over when a write transaction begins with ALL of it copied. Under a steady
 * stream of writes a pass never catches up (the writer appends while it copies): the WAL grew
 * without bound — 9.6 GB after a few minutes of webhook load, every commit slower as it grew (found
 * by the inbound benchmark). So once a pass reports more than `resetFrames` pages in the WAL, the
 * round goes on with passes — each copies what was written during the one before — until one
 * copies everything (no commit landed during it): the first write after it starts the WAL over, and
 * `journal_size_limit` bounds the file (see createDb). Between the commits of a busy app such a pass
 * usually fits. When none does, a last pass runs while `hold` keeps the app's connection (Kysely's
 * connection mutex: writers wait asynchronously, the event loop runs on), after a pass that took
 * under QUICK_PASS_MS, so that it has little to copy (when none got quick, only past a cap).
 * Holding every round stalled writers 1–7 ms once a second (small-rooms benchmark: 4–6 ms typical).
 *
 * The worker is plain CommonJS evaluated in the thread (no TypeScript loader needed there).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
parentPort.on('message', (m) => {
  if (m === 'stop') { db.close(); parentPort.close(); return; }
  try {
    const r = db.pragma('wal_checkpoint(PASSIVE)')[0] || { busy: 0, log: 0, checkpointed: 0 };
    parentPort.postMessage({ id: m.id, log: r.log, checkpointed: r.checkpointed, busy: r.busy });
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String(err && err.message || err) });
  }
});
`;

/** A pass this short leaves little for a held one; at most this many passes are tried before it. */
const QUICK_PASS_MS = 5;
const MAX_CATCH_UP_PASSES = 20;

/** WAL length (pages; 16 MiB of 4 KiB pages) past which a round ends with a held pass (see above). */
export const WAL_RESET_FRAMES = 4096;
/**
 * When no pass of a round gets quick (writes come faster than a pass copies them) the held pass
 * would be long: it is made only once the WAL is this many times WAL_RESET_FRAMES (64 MiB). Inbound
 * benchmark, two rounds each: ack p99 ~19.5 ms with 4, 24–45 ms with 16 (fewer but longer stalls).
 */
const WAL_CAP_FACTOR = 4;

export interface Checkpointer {
  /** One round now (the timer runs them every intervalMs); resolves with the WAL length it saw last. */
  round(): Promise<number>;
  stop(): Promise<void>;
}

interface PassResult {
  log: number;
  checkpointed: number;
}

/**
 * `hold(fn)`: runs fn while no other statement can run on the app's connection (createDb passes
 * Kysely's `db.connection().execute`).
 */
export function startCheckpointer(
  path: string,
  intervalMs: number,
  onError: (message: string) => void = () => undefined,
  opts: { hold?: (fn: () => Promise<void>) => Promise<void>; resetFrames?: number } = {},
): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const resetFrames = opts.resetFrames ?? WAL_RESET_FRAMES;
  const capFrames = resetFrames * WAL_CAP_FACTOR;
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, path } });
  const waiting = new Map<number, (r: PassResult | null) => void>();
  let next = 0;
  worker.on('message', (m: { id: number; error?: string } & PassResult) => {
    if (m.error) onError(m.error);
    const done = waiting.get(m.id);
    waiting.delete(m.id);
    if (waiting.size === 0) worker.unref();
    done?.(m.error ? null : m);
  });
  worker.on('error', (err) => onError(err.message));
  worker.on('exit', () => {
    for (const done of waiting.values()) done(null);
    waiting.clear();
  });
  // The process may exit with the worker idle.
  worker.unref();

  const pass = () =>
    new Promise<PassResult | null>((resolve) => {
      const id = ++next;
      waiting.set(id, resolve);
      worker.ref(); // an answer is awaited: the process waits for it (unref'd again when none is)
      worker.postMessage({ id });
    });
  let running: Promise<number> | null = null;
  let stopped = false;
  const round = (): Promise<number> =>
    (running ??= (async () => {
      try {
        let r = await pass();
        if (!r || r.log <= resetFrames) return r?.log ?? 0;
        // Passes until the WAL has started over: a pass during which no commit came in copies
        // everything, and the next write then starts the WAL over with nobody held (between the
        // commits of a busy app a quick pass usually fits). Else the last quick one leaves little
        // for a held pass.
        let quick = false;
        for (let i = 0; i < MAX_CATCH_UP_PASSES; i++) {
          const before = r.log;
          const started = performance.now();
          r = await pass();
          if (!r) return 0;
          // Shorter than before: a write found it all copied and started the WAL over.
          if (r.log < before) return r.log;
          quick = performance.now() - started < QUICK_PASS_MS;
        }
        // Writes faster than the copy: the held pass would be long. Hold anyway only past the cap.
        if (opts.hold && (quick || r.log > capFrames)) {
          let last: PassResult | null = null;
          await opts.hold(async () => {
            last = await pass();
          });
          return (last as PassResult | null)?.log ?? 0;
        }
        return r?.log ?? 0;
      } finally {
        running = null;
      }
    })());
  const timer = setInterval(() => {
    if (!stopped) void round();
  }, intervalMs);
  timer.unref();

  return {
    round,
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running;
      await pass(); // the last pages into the database file
      await new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        worker.ref(); // keep the process alive until the worker closed its connection
        worker.postMessage('stop');
        setTimeout(() => void worker.terminate(), 2000).unref(); // a worker that does not answer
      });
    },
  };
}
