import type { Clock } from '../../platform/clock.ts';
import { safePost, UnsafeUrlError } from '../../platform/safe-http.ts';
import type { SecretBox } from '../../platform/secret-box.ts';
import type { DeliveryResult, TargetHandler } from './dispatcher.ts';
import type { OutboxRow } from './outbox.repo.ts';
import { signWebhook } from './signature.ts';
import type { WebhooksRepo } from './webhooks.repo.ts';

/**
 * Outgoing webhooks: POST the event JSON (the row's payload, byte for byte) to the endpoint,
 * signed as docs/events.md describes. Any 2xx is a delivery; anything else, a network error or
 * the timeout is retried by the dispatcher. The URL is checked again at every attempt
 * (safe-http.ts), so a host name re-pointed at a private address is not reached.
 */
export class WebhookTarget implements TargetHandler {
  constructor(
    private readonly endpoints: WebhooksRepo,
    private readonly secrets: SecretBox,
    private readonly opts: { timeoutMs: number; allowPrivate: boolean },
    private readonly clock: Clock,
  ) {}

  async deliver(row: OutboxRow, signal: AbortSignal): Promise<DeliveryResult> {
    const ep = row.endpoint_id ? await this.endpoints.getById(row.org_id, row.endpoint_id) : undefined;
    if (!ep) return { ok: false, permanent: true, error: 'the webhook endpoint was deleted' };
    if (!ep.active) return { ok: false, permanent: true, error: 'the webhook endpoint is disabled' };
    const timestamp = Math.floor(this.clock.now() / 1000);
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'Parley-Webhooks/1',
      'x-parley-event': row.event_name,
      'x-parley-event-id': row.event_id,
      'x-parley-delivery-id': row.id,
      'x-parley-timestamp': String(timestamp),
      'x-parley-signature': signWebhook(this.secrets.open(ep.secret_enc), timestamp, row.payload),
    };
    try {
      const res = await safePost(ep.url, row.payload, { headers, timeoutMs: this.opts.timeoutMs, allowPrivate: this.opts.allowPrivate, signal, maxResponseBytes: 200 });
      if (res.status >= 200 && res.status < 300) return { ok: true, responseStatus: res.status };
      const snippet = res.body.replace(/\s+/g, ' ').trim();
      return { ok: false, responseStatus: res.status, error: `HTTP ${res.status}${snippet ? `: ${snippet}` : ''}` };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return { ok: false, error: err instanceof UnsafeUrlError ? `refused: ${message}` : message };
    }
  }
}
