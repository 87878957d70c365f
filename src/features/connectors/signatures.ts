import { createHmac, timingSafeEqual } from 'node:crypto';

export type SignatureCheck = 'ok' | 'missing' | 'invalid';

/** Constant-time comparison of two strings (different lengths are simply unequal). */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Meta (WhatsApp Cloud, Instagram, Messenger): `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of
 * the raw body with the app secret>` (CONNECTORS.md §1.2), checked on the exact bytes received.
 */
export function checkMetaSignature(raw: Buffer, header: string | undefined, appSecret: string | undefined): SignatureCheck {
  if (!header) return 'missing';
  if (!appSecret) return 'invalid';
  const expected = `sha256=${createHmac('sha256', appSecret).update(raw).digest('hex')}`;
  return sameSecret(header.trim().toLowerCase(), expected) ? 'ok' : 'invalid';
}

/** A shared secret the platform echoes (Telegram's secret_token header; a token in the URL for gateways). */
export function checkToken(given: string | undefined, expected: string): SignatureCheck {
  if (!given) return 'missing';
  return sameSecret(given, expected) ? 'ok' : 'invalid';
}

/**
 * Chatwoot (CONNECTORS.md §5.2): `X-Chatwoot-Signature: sha256=<hex HMAC-SHA256(secret,
 * "<X-Chatwoot-Timestamp>.<raw body>")>`; a timestamp more than `toleranceSec` away from now is
 * refused like a wrong signature (a replayed delivery).
 */
export function checkChatwootSignature(raw: Buffer, signature: string | undefined, timestamp: string | undefined, secret: string, nowSec: number, toleranceSec = 300): SignatureCheck {
  if (!signature || !timestamp) return 'missing';
  if (!/^\d{1,12}$/.test(timestamp) || Math.abs(nowSec - Number(timestamp)) > toleranceSec) return 'invalid';
  const expected = `sha256=${createHmac('sha256', secret).update(`${timestamp}.`).update(raw).digest('hex')}`;
  return sameSecret(signature.trim().toLowerCase(), expected) ? 'ok' : 'invalid';
}
