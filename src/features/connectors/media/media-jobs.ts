import type { Kysely } from 'kysely';
import type { DB } from '../../../storage/schema.ts';
import type { FilesService } from '../../files/files.service.ts';
import type { InboxesService } from '../../inboxes/inboxes.service.ts';
import type { DeliveryResult } from '../../integrations/dispatcher.ts';
import type { IntegrationEvents } from '../../integrations/events.ts';
import type { OutboxRow } from '../../integrations/outbox.repo.ts';
import type { MessagesService } from '../../messages/messages.service.ts';
import type { NeutralMedia } from '../neutral.ts';
import { fetchMedia, MediaFetchError, type MediaFetchConfig } from './fetch-media.ts';

/** The outbox target that downloads an inbound message's media into file storage. */
export const MEDIA_FETCH_TARGET = 'media_fetch';

/** Queue the download of a stored platform message's media (call in the message's transaction). */
export function enqueueMediaFetch(integrations: IntegrationEvents, trx: Kysely<DB>, orgId: string, messageId: string): Promise<void> {
  return integrations.enqueue(trx, [
    { orgId, target: MEDIA_FETCH_TARGET, eventName: 'media.fetch', eventId: messageId, payload: JSON.stringify({ org_id: orgId, message_id: messageId }), idempotencyKey: `media_fetch:${messageId}` },
  ]);
}

/**
 * The media_fetch handler: a platform message stored with `metadata.media.download = 'pending'`
 * gets its bytes through fetchMedia (the hardened client), stored as a file (type sniffed from the
 * bytes), attached to the message, and `download` set to 'done'. A failure is retried with the
 * outbox's backoff; a permanent one, or the last attempt, sets `download: 'failed'` with the
 * reason. The webhook was acknowledged long before: nothing here delays it.
 */
export class MediaFetchJobs {
  constructor(
    private readonly db: Kysely<DB>,
    private readonly inboxes: InboxesService,
    private readonly files: FilesService,
    private readonly messages: MessagesService,
    private readonly cfg: MediaFetchConfig,
    /** The outbox's OUTBOX_MAX_ATTEMPTS: the attempt that gives up. */
    private readonly maxAttempts: number,
  ) {}

  /** Called once a message's media is settled (stored, or given up): mirrors waiting for it go on. */
  onSettled: ((orgId: string, messageId: string) => Promise<void>) | null = null;

  async deliver(row: OutboxRow, signal: AbortSignal): Promise<DeliveryResult> {
    const { org_id: orgId, message_id: messageId } = JSON.parse(row.payload) as { org_id: string; message_id: string };
    const m = await this.db
      .selectFrom('messages as m')
      .innerJoin('conversations as c', 'c.id', 'm.conversation_id')
      .select(['m.type', 'm.metadata', 'm.deleted_at', 'c.inbox_id'])
      .where('m.org_id', '=', orgId)
      .where('m.id', '=', messageId)
      .executeTakeFirst();
    const metadata = m?.metadata ? (JSON.parse(m.metadata) as Record<string, unknown>) : null;
    const media = metadata?.media as (NeutralMedia & { download?: string }) | undefined;
    // Deleted meanwhile, or already done (a repeated delivery): nothing to do.
    if (!m || m.deleted_at !== null || !media?.source || media.download === 'done') return { ok: true };
    const inbox = m.inbox_id ? await this.inboxes.getRow(orgId, m.inbox_id) : undefined;
    if (!inbox) return this.#fail(orgId, messageId, new MediaFetchError('the inbox is gone', true), true);
    // One deadline for the whole attempt (WhatsApp is two requests), besides the dispatcher's stop signal.
    const attemptSignal = AbortSignal.any([signal, AbortSignal.timeout(this.cfg.timeoutMs)]);
    try {
      const got = await fetchMedia(inbox.platform, media, this.inboxes.credentials(inbox), this.cfg, attemptSignal);
      const file = await this.files.storeFromPlatform(orgId, { filename: media.fileName ?? m.type, bytes: got.bytes });
      // The source is not needed any more (and a gateway's public media path is a secret, CONNECTORS.md §6.3).
      await this.messages.setPlatformMedia(orgId, messageId, { download: 'done', file_id: file.id, source: undefined, error: undefined }, file.id);
      await this.onSettled?.(orgId, messageId);
      return { ok: true };
    } catch (err) {
      return this.#fail(orgId, messageId, err, row.attempts >= this.maxAttempts);
    }
  }

  async #fail(orgId: string, messageId: string, err: unknown, last: boolean): Promise<DeliveryResult> {
    const fetchError = err instanceof MediaFetchError ? err : null;
    const reason = fetchError?.message ?? 'storing the media failed';
    const permanent = fetchError?.permanent === true;
    if (!permanent && !last) return { ok: false, error: reason };
    await this.messages.setPlatformMedia(orgId, messageId, { download: 'failed', error: reason }, null);
    await this.onSettled?.(orgId, messageId);
    return { ok: false, permanent: true, error: reason };
  }
}
