import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomHex } from '../platform/ids.ts';
import { assertRangeInside, assertValidKey, type ByteRange, type FileStorage, type StoredObject } from './file-storage.ts';

/**
 * Files in a folder of the local disk (by default DATA_DIR/files). Single node only: other
 * processes, on other machines, do not see these files — use S3 when running several nodes.
 *
 * A put writes to `<root>/.tmp/` and renames into place when the body is complete and flushed,
 * so a reader never sees a partial file and a failed put leaves nothing behind (keys cannot name
 * `.tmp`: segments never start with a dot).
 */
export class LocalFileStorage implements FileStorage {
  readonly #root: string;

  /** Nothing is created on disk until the first put. */
  constructor(root: string) {
    this.#root = resolve(root);
  }

  async put(key: string, body: Readable | Uint8Array): Promise<{ size: number }> {
    assertValidKey(key);
    const target = this.#path(key);
    const tmpDir = join(this.#root, '.tmp');
    const tmp = join(tmpDir, `${randomHex(12)}.part`);
    await mkdir(tmpDir, { recursive: true });
    let size = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        cb(null, chunk);
      },
    });
    const out = createWriteStream(tmp, { flags: 'wx', flush: true });
    try {
      const source = body instanceof Readable ? body : Readable.from([Buffer.from(body.buffer, body.byteOffset, body.byteLength)]);
      await pipeline(source, count, out);
      await mkdir(dirname(target), { recursive: true });
      await rename(tmp, target);
      return { size };
    } catch (err) {
      // The file may still be opening when the source fails: removed only once the stream is closed,
      // or an empty part file would be created after the removal.
      if (!out.closed) await once(out, 'close').catch(() => undefined);
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async get(key: string, range?: ByteRange): Promise<StoredObject | null> {
    assertValidKey(key);
    let handle;
    try {
      handle = await open(this.#path(key), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    try {
      // Size and bytes come from the same open file, even if the key is replaced meanwhile.
      const { size } = await handle.stat();
      assertRangeInside(range, size);
      const stream = handle.createReadStream(range ? { start: range.start, end: range.end } : {});
      return { stream, size };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    await rm(this.#path(key), { force: true });
  }

  async close(): Promise<void> {}

  #path(key: string): string {
    return join(this.#root, ...key.split('/'));
  }
}
