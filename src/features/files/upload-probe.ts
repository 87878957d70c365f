import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * Sits between the upload and the file storage: counts and hashes the bytes on their way and
 * keeps the first `headBytes` for sniffing. One byte past `maxBytes` fails the stream, which makes
 * the storage drop what it had written.
 */
export class UploadProbe extends Transform {
  readonly #hash = createHash('sha256');
  readonly #head: Buffer[] = [];
  #headLength = 0;
  #size = 0;
  #tooLarge = false;

  constructor(
    private readonly maxBytes: number,
    private readonly headBytes: number,
  ) {
    super();
  }

  /** True once the body went past the limit. */
  get tooLarge(): boolean {
    return this.#tooLarge;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#size += chunk.length;
    if (this.#size > this.maxBytes) {
      this.#tooLarge = true;
      cb(new Error(`upload larger than ${this.maxBytes} bytes`));
      return;
    }
    this.#hash.update(chunk);
    if (this.#headLength < this.headBytes) {
      const piece = chunk.subarray(0, this.headBytes - this.#headLength);
      this.#head.push(piece);
      this.#headLength += piece.length;
    }
    cb(null, chunk);
  }

  /** Size, SHA-256 (hex) and leading bytes; call once, after the stream ended. */
  result(): { size: number; sha256: string; head: Buffer } {
    return { size: this.#size, sha256: this.#hash.digest('hex'), head: Buffer.concat(this.#head) };
  }
}
