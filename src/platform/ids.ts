import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

/** A new random (v4) UUID string from the CSPRNG. */
export const newId = (): string => randomUUID();

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
