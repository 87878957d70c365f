import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable, Transform } from 'node:stream';
import { assertRangeInside, assertValidKey, type ByteRange, type FileStorage, type StoredObject } from './file-storage.ts';

export interface S3FileStorageOptions {
  bucket: string;
  region: string;
  /** For S3-compatible servers (MinIO, Ceph, R2, ...); null means AWS itself. */
  endpoint: string | null;
  /** Path-style URLs (`<endpoint>/<bucket>/<key>`), which most S3-compatible servers need. */
  forcePathStyle: boolean;
  /** Both or neither; neither means the SDK's default chain (environment, instance role...). */
  credentials: { accessKeyId: string; secretAccessKey: string } | null;
  /** Key prefix inside the bucket (tests use a random one). */
  prefix?: string;
}

/**
 * Files in an S3 bucket (AWS or an S3-compatible server), shared by every node. A put streams the
 * body: small bodies go up in one PutObject, larger ones as a multipart upload that is aborted when
 * the body fails, so no partial object ever appears. The bucket must exist.
 */
export class S3FileStorage implements FileStorage {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;

  constructor(opts: S3FileStorageOptions) {
    this.#bucket = opts.bucket;
    this.#prefix = opts.prefix ?? '';
    this.#client = new S3Client({
      region: opts.region,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle,
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      // Checksums only where S3 requires them: many S3-compatible servers reject the newer
      // trailing-checksum uploads, and our own sha256 covers integrity end to end.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  async put(key: string, body: Readable | Uint8Array): Promise<{ size: number }> {
    assertValidKey(key);
    const Key = this.#prefix + key;
    if (!(body instanceof Readable)) {
      await this.#client.send(new PutObjectCommand({ Bucket: this.#bucket, Key, Body: body, ContentLength: body.byteLength }));
      return { size: body.byteLength };
    }
    let size = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        cb(null, chunk);
      },
    });
    // A failing body must fail the upload: pass its error on to what the SDK reads.
    let bodyError: unknown;
    body.once('error', (err) => count.destroy((bodyError = err)));
    const upload = new Upload({ client: this.#client, params: { Bucket: this.#bucket, Key, Body: body.pipe(count) }, queueSize: 2, leavePartsOnError: false });
    try {
      await upload.done();
    } catch (err) {
      // The upload is aborted either way; report why it failed (not a later failure of the abort).
      throw bodyError ?? err;
    }
    return { size };
  }

  async get(key: string, range?: ByteRange): Promise<StoredObject | null> {
    assertValidKey(key);
    if (range) assertRangeInside(range, Number.MAX_SAFE_INTEGER);
    try {
      const out = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
      );
      const body = out.Body as Readable;
      // "bytes 0-9/1234" for a range, else the whole length.
      const total = out.ContentRange ? Number(out.ContentRange.split('/')[1]) : Number(out.ContentLength ?? 0);
      if (!range) return { stream: body, size: total };
      if (range.end >= total) {
        body.destroy();
        assertRangeInside(range, total);
      }
      // Some S3-compatible servers answer a longer range than asked (s3rver: "bytes=0-0" → all).
      const served = /^bytes (\d+)-/.exec(out.ContentRange ?? '');
      if (Number(served?.[1] ?? 0) !== range.start) {
        body.destroy();
        throw new Error(`the S3 server answered ${out.ContentRange ?? 'no range'} for bytes=${range.start}-${range.end}`);
      }
      return { stream: body.pipe(takeBytes(range.end - range.start + 1, body)), size: total };
    } catch (err) {
      if (isMissing(err)) return null;
      if (err instanceof S3ServiceException && (err.name === 'InvalidRange' || err.$metadata.httpStatusCode === 416)) {
        throw new RangeError(`range ${range?.start}-${range?.end} is outside the object`, { cause: err });
      }
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    // S3 answers 204 for a missing key too: idempotent by nature.
    await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key }));
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }
}

/** Pass the first `n` bytes on, then end (and stop reading the source). */
function takeBytes(n: number, source: Readable): Transform {
  let left = n;
  const t: Transform = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (left <= 0) return cb();
      const piece = chunk.length > left ? chunk.subarray(0, left) : chunk;
      left -= piece.length;
      cb(null, piece);
      if (left === 0) {
        t.end();
        source.unpipe(t);
        source.destroy();
      }
    },
  });
  source.once('error', (err) => t.destroy(err));
  t.once('close', () => source.destroy());
  return t;
}

function isMissing(err: unknown): boolean {
  return err instanceof S3ServiceException && (err.name === 'NoSuchKey' || err.name === 'NotFound' || err.$metadata.httpStatusCode === 404);
}
