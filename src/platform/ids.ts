import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

/** A new random (v4) UUID string from the CSPRNG. */
export const newId = (): string => randomUUID();

let lastMs = 0;
let counter = 0;
/**
 * A new time-ordered (v7, RFC 9562) UUID whose string order, within this process, is the order of the calls:
 * 48 bits of Unix milliseconds, then a 12-bit counter (method 1: randomly seeded each millisecond, a carry
 * moves the timestamp on), then 62 random bits. Messages use it so that equal timestamps still sort in send
 * order (search ties are broken by id), and so their primary-key inserts stay at the right of the B-tree.
 */
export function newOrderedId(now = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    counter = randomBytes(2).readUInt16BE(0) & 0x7ff; // leave headroom for the millisecond's later ids
  } else if (++counter > 0xfff) {
    lastMs += 1;
    counter = randomBytes(2).readUInt16BE(0) & 0x7ff;
  }
  const b = randomBytes(16);
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
