import type { Readable } from 'node:stream';

/** A byte range, both ends included (as in an HTTP `Range: bytes=start-end`). */
export interface ByteRange {
  start: number;
  end: number;
}

/** What `get` hands back. */
export interface StoredObject {
  /** The bytes asked for: the whole object, or only the range. The caller must read it to the end or destroy it. */
  stream: Readable;
  /** The size of the whole object in bytes (not of the range). */
  size: number;
}

/**
 * Where the bytes of uploaded files live (Centrifuge-style seam: one interface, a local-folder
 * default, an S3 implementation, one contract suite for both in file-storage.contract.ts).
 *
 * Keys are chosen by the caller: one to 512 characters, segments of `[A-Za-z0-9_-][A-Za-z0-9._-]*`
 * separated by `/` (so no absolute paths, no `..`, no hidden names); any other key is rejected
 * with an InvalidStorageKeyError before anything is touched.
 *
 * The storage knows nothing about who may read what: access checks happen in the files service
 * before any of these methods is called.
 */
export interface FileStorage {
  /**
   * Store `body` under `key`, reading a stream to its end, and resolve with the number of bytes
   * stored once they are durable. All or nothing: when the body errors (e.g. an upload over the
   * size limit) or the write fails, the promise rejects with that error and no object, not even a
   * partial one, becomes visible under the key. Putting an existing key replaces its object.
   */
  put(key: string, body: Readable | Uint8Array): Promise<{ size: number }>;

  /**
   * The object under `key`, or null when there is none. With a range, only those bytes are
   * streamed; the range must lie inside the object (0 <= start <= end < size) — the caller checks
   * it against the size it recorded at upload (a RangeError otherwise).
   */
  get(key: string, range?: ByteRange): Promise<StoredObject | null>;

  /** Remove the object under `key`. Idempotent: deleting a missing key succeeds. */
  delete(key: string): Promise<void>;

  /** Release clients and handles; the storage is not used afterwards. */
  close(): Promise<void>;
}

export class InvalidStorageKeyError extends Error {
  constructor(key: string) {
    super(`invalid storage key: ${JSON.stringify(key.slice(0, 100))}`);
    this.name = 'InvalidStorageKeyError';
  }
}

const KEY_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/;

/** Throw unless `key` follows the key rules of FileStorage. */
export function assertValidKey(key: string): void {
  if (key.length === 0 || key.length > 512 || !KEY_RE.test(key)) throw new InvalidStorageKeyError(key);
}

/** Throw a RangeError unless the range lies inside an object of `size` bytes. */
export function assertRangeInside(range: ByteRange | undefined, size: number): void {
  if (range === undefined) return;
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end >= size) {
    throw new RangeError(`range ${start}-${end} is outside an object of ${size} bytes`);
  }
}
