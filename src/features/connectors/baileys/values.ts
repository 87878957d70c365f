import { isoFromUnix } from '../neutral.ts';

/**
 * Defensive JSON access for Codechat / Evolution deliveries: any field may be missing or of another
 * type, so every read goes through one of these and none of them throws.
 */
export type Json = Record<string, unknown>;

/** The value when it is a plain JSON object (not an array, not null). */
export function asObject(v: unknown): Json | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
}

/** A non-empty string. */
export function asString(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** A string, or a finite number as its decimal text (ids that servers send as either). */
export function asId(v: unknown): string | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? String(v) : asString(v);
}

/**
 * A finite number from a number, a numeric string, or a protobuf Long `{low, high}` (Baileys sends
 * timestamps and file lengths in all three forms).
 */
export function asNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string') {
    const n = v.trim() === '' ? NaN : Number(v);
    return Number.isFinite(n) ? n : undefined;
  }
  const long = asObject(v);
  if (long && typeof long.low === 'number' && typeof long.high === 'number') {
    const n = long.high * 2 ** 32 + (long.low >>> 0);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** `data` as a list: Codechat and Evolution send one object per event, history events send arrays. */
export function asList(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  return v === undefined || v === null ? [] : [v];
}

/** Drops the keys whose value is undefined, so optional fields are absent rather than `undefined`. */
export function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

const MAX_DATE_MS = 8.64e15;

/**
 * A Unix time as ISO, or undefined when missing or out of range. Seconds is what Baileys sends;
 * a value past 1e11 (year 5138 in seconds) can only be milliseconds, and is read as such.
 * NOTE: `isoFromUnix` alone would throw a RangeError on absurd values; the range check comes first.
 */
export function isoFromSeconds(v: unknown): string | undefined {
  const n = asNumber(v);
  if (n === undefined || n <= 0) return undefined;
  const ms = n > 1e11 ? n : n * 1000;
  return ms > MAX_DATE_MS ? undefined : isoFromUnix(ms, 'ms');
}

/** An RFC 3339 / ISO date string (Codechat `dateTime`, Evolution `date_time`) or Unix seconds, as ISO. */
export function isoFromAny(v: unknown): string | undefined {
  if (typeof v === 'string' && v.trim() !== '' && !Number.isFinite(Number(v))) {
    const ms = Date.parse(v);
    return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
  }
  return isoFromSeconds(v);
}

/** Now, for deliveries that carry no usable time. */
export function nowIso(): string {
  return new Date().toISOString();
}

const SECRET_KEYS = new Set(['apikey', 'api_key', 'token', 'jwt_key']);
const MAX_STRIP_DEPTH = 12;

/**
 * A copy of a delivery fragment fit to store as `raw`: without credential fields (Evolution puts the
 * instance token in `apikey`, §6.2) and without inline media bytes (`base64`, already in
 * `media.source`). Deeper than MAX_STRIP_DEPTH levels the subtree is kept as is: credentials sit
 * at the top of the payload, and the bound keeps hostile nesting from exhausting the stack.
 */
export function withoutSecrets(v: unknown, depth = 0): unknown {
  if (depth > MAX_STRIP_DEPTH || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => withoutSecrets(x, depth + 1));
  // Object.fromEntries defines own properties: a "__proto__" key stays a plain key.
  return Object.fromEntries(
    Object.entries(v)
      .filter(([k]) => !SECRET_KEYS.has(k.toLowerCase()) && k !== 'base64')
      .map(([k, x]) => [k, withoutSecrets(x, depth + 1)]),
  );
}
