import { createHmac } from 'node:crypto';
import { safeEqual } from '../../platform/ids.ts';

/**
 * Outgoing webhook signatures (docs/events.md, "Verifying a delivery"): the lower-case hex
 * HMAC-SHA256, keyed with the endpoint's secret, of `<timestamp>.<raw body>`, where timestamp is
 * the X-Parley-Timestamp header (Unix seconds). Sent as `X-Parley-Signature: v1=<hex>`; a future
 * scheme would add another `v2=` entry to the same header, comma-separated.
 */
export function signWebhook(secret: string, timestamp: number | string, rawBody: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${rawBody}`, 'utf8').digest('hex')}`;
}

/**
 * What a receiver does (and what the tests do): recompute and compare in constant time, and
 * refuse timestamps further than `toleranceSeconds` from now (replays of old deliveries).
 */
export function verifyWebhook(
  secret: string,
  headers: { timestamp: string | undefined; signature: string | undefined },
  rawBody: string,
  nowSeconds: number,
  toleranceSeconds = 300,
): boolean {
  const ts = Number(headers.timestamp);
  if (!headers.signature || !Number.isInteger(ts) || Math.abs(nowSeconds - ts) > toleranceSeconds) return false;
  const expected = signWebhook(secret, headers.timestamp!, rawBody);
  return headers.signature.split(',').some((part) => safeEqual(part.trim(), expected));
}
