import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * WAL checkpoints off the request path. SQLite normally checkpoints inside the commit that pushes
 * the WAL past 1,000 pages, on the thread that committed: the request that happens to commit then
 * stalls for the copy (several ms). Instead the app's connection runs with `wal_autocheckpoint = 0`
 * and this worker thread, with its own connection to the same file, runs a PASSIVE checkpoint
 * every `intervalMs`: it copies committed pages to the database file without blocking the writer
 * or readers, and the next write transaction starts the WAL over once all of it is copied.
 *
 * The worker is plain CommonJS evaluated in the thread (no TypeScript loader needed there).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
const checkpoint = () => {
  try { db.pragma('wal_checkpoint(PASSIVE)'); } catch (err) { parentPort.postMessage({ error: String(err && err.message || err) }); }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m === 'stop') { clearInterval(timer); checkpoint(); db.close(); parentPort.close(); }
});
`;

export interface Checkpointer {
  stop(): Promise<void>;
}

export function startCheckpointer(path: string, intervalMs: number, onError: (message: string) => void = () => undefined): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, path, intervalMs } });
  worker.on('message', (m: { error?: string }) => {
    if (m.error) onError(m.error);
  });
  worker.on('error', (err) => onError(err.message));
  // The process may exit with the worker still running (it only keeps a timer).
  worker.unref();
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        // Keep the process alive until the last checkpoint is done.
        worker.ref();
        worker.postMessage('stop');
        // A worker that does not answer is terminated.
        setTimeout(() => void worker.terminate(), 2000).unref();
      }),
  };
}
