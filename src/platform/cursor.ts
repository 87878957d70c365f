import { AppError } from './errors.ts';

/** Opaque keyset-pagination cursors: base64url JSON, validated on the way in. */
export function encodeCursor(value: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function decodeCursor<K extends string>(cursor: string, keys: readonly K[]): Record<K, string> {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (parsed && typeof parsed === 'object') {
      const out = {} as Record<K, string>;
      for (const k of keys) {
        const v = (parsed as Record<string, unknown>)[k];
        if (typeof v !== 'string') throw new Error('bad cursor');
        out[k] = v;
      }
      return out;
    }
  } catch {
    // fall through
  }
  throw new AppError('validation.failed', 'Invalid cursor', { fields: [{ field: '/querystring/cursor', message: 'is not a valid cursor' }] });
}
