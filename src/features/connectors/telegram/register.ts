import { requireAccess, type Principal } from '../../../access/access.ts';
import { AppError } from '../../../platform/errors.ts';
import type { InboxesService } from '../../inboxes/inboxes.service.ts';

/**
 * Telegram webhook registration (CONNECTORS.md §2.1): one `setWebhook` call with the inbox's URL
 * and its secret token, which Telegram then echoes in `X-Telegram-Bot-Api-Secret-Token` on every
 * delivery. The updates Parley handles are asked for explicitly (reactions are not sent by default).
 */
export async function registerTelegramWebhook(
  p: Principal,
  inboxes: InboxesService,
  inboxId: string,
  apiBase: string,
  timeoutMs: number,
): Promise<{ ok: true; url: string }> {
  requireAccess(p, 'inboxes.manage');
  const inbox = await inboxes.requireVisible(p, inboxId);
  if (inbox.platform !== 'telegram') throw new AppError('validation.failed', 'Only Telegram inboxes register a webhook this way', { fields: [{ field: '/params/id', message: 'not a Telegram inbox' }] });
  const token = inboxes.credentials(inbox).bot_token;
  if (!token) throw new AppError('validation.failed', 'The inbox has no bot_token credential', { fields: [{ field: '/credentials/bot_token', message: 'is required' }] });
  const url = (await inboxes.get(p, inboxId)).webhook_url!;
  let res: Response;
  try {
    res = await fetch(`${apiBase}/bot${token}/setWebhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url, secret_token: inbox.webhook_token, allowed_updates: ['message', 'edited_message', 'channel_post', 'edited_channel_post', 'message_reaction', 'callback_query', 'my_chat_member'] }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new AppError('service.unavailable', `Telegram did not answer: ${err instanceof Error ? err.message : String(err)}`);
  }
  const body = (await res.json().catch(() => ({}))) as { ok?: boolean; description?: string };
  if (!res.ok || body.ok !== true) throw new AppError('validation.failed', `Telegram refused the webhook: ${body.description ?? `HTTP ${res.status}`}`, { fields: [{ field: '/credentials/bot_token', message: body.description ?? 'refused' }] });
  return { ok: true, url };
}
