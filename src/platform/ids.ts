import { createHash, randomBytes, randomFillSync, randomUUID, timingSafeEqual } from 'node:crypto';

/** A new random (v4) UUID string from the CSPRNG. */
export const newId = (): string => randomUUID();

let lastMs = 0;
let counter = 0;
/**
 * CSPRNG bytes drawn in blocks (one call into the generator per 256 ids, not two per id: a
 * randomBytes call cost ~12 µs on the webhook ack path, more than the rest of the id).
 */
const pool = Buffer.alloc(4096);
let poolAt = pool.length;
function take(n: number): number {
  if (poolAt + n > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const at = poolAt;
  poolAt += n;
  return at;
}

/**
 * A new time-ordered (v7, RFC 9562) UUID whose string order, within this process, is the order of the calls:
 * 48 bits of Unix milliseconds, then a 12-bit counter (method 1: randomly seeded each millisecond, a carry
 * moves the timestamp on), then 62 random bits. Messages use it so that equal timestamps still sort in send
 * order (search ties are broken by id), and so their primary-key inserts stay at the right of the B-tree.
 */
export function newOrderedId(now = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    counter = pool.readUInt16BE(take(2)) & 0x7ff; // leave headroom for the millisecond's later ids
  } else if (++counter > 0xfff) {
    lastMs += 1;
    counter = pool.readUInt16BE(take(2)) & 0x7ff;
  }
  const b = Buffer.allocUnsafe(16);
  const at = take(16);
  pool.copy(b, 0, at, at + 16);
  b.writeUIntBE(lastMs, 0, 6);
  b[6] = 0x70 | (counter >> 8);
  b[7] = counter & 0xff;
  b[8] = 0x80 | (b[8]! & 0x3f);
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** `n` random bytes from the CSPRNG, base64url. */
export const randomToken = (bytes = 32): string => randomBytes(bytes).toString('base64url');

/** `n` random bytes from the CSPRNG, lower-case hex. */
export const randomHex = (bytes: number): string => randomBytes(bytes).toString('hex');

/** SHA-256 hex of a high-entropy secret (refresh tokens, API keys): such secrets need no slow hash. */
export const sha256Hex = (value: string): string => createHash('sha256').update(value).digest('hex');

/** Constant-time string equality. */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}
