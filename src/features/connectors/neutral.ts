/**
 * The neutral model every connector parses its platform's webhooks into (CONNECTORS.md §9): what
 * the rest of Parley stores, whatever the platform. Parsers are pure functions of the delivery's
 * JSON; they never throw on unknown shapes — what they do not understand becomes `unsupported`
 * with its raw payload.
 */
export type NeutralKind =
  | 'text'
  | 'image'
  | 'video'
  | 'audio'
  | 'voice'
  | 'document'
  | 'sticker'
  | 'location'
  | 'contacts'
  | 'reaction'
  | 'interactive_reply'
  | 'edit'
  | 'delete'
  | 'system'
  | 'unsupported';

export interface NeutralIdentity {
  /** The platform's id of the person: wa_id, BSUID, Telegram user id, IGSID, PSID, JID. */
  externalId: string;
  /** When the platform tells it (WhatsApp wa_id, a JID's number), in any form: Parley normalizes it. */
  phone?: string;
  displayName?: string;
  username?: string;
}

export interface NeutralMedia {
  mime?: string;
  sizeBytes?: number;
  sha256?: string;
  fileName?: string;
  caption?: string;
  durationSec?: number;
  width?: number;
  height?: number;
  voice?: boolean;
  animated?: boolean;
  /** Where the bytes are: a platform media id (fetched through its API), a URL, or inline base64. */
  source: { kind: 'platform_id' | 'url' | 'inline_base64'; value: string };
}

export interface NeutralMessage {
  /** The platform's message id: the dedupe key within an inbox. */
  externalId: string;
  /** The platform's own handle when it is not externalId (Codechat v1's row id: what it quotes and deletes by). */
  platformRef?: string;
  /** An echo of a message the business sent outside Parley (or our own send reported back). */
  isEcho: boolean;
  /** The conversation on the platform side: the contact's id, or the group's id. */
  chatId: string;
  isGroup: boolean;
  /** Who wrote it (for a group: the participant). */
  sender: NeutralIdentity;
  /** ISO instant. */
  sentAt: string;
  kind: NeutralKind;
  text?: string;
  media?: NeutralMedia;
  location?: { lat: number; lng: number; name?: string; address?: string; url?: string };
  contacts?: Array<{ name: string; phones: Array<{ number: string; waId?: string; type?: string }>; emails?: string[] }>;
  /** For kind 'reaction': the message reacted to; emoji null = the reaction was removed. */
  reaction?: { targetExternalId: string; emoji: string | null };
  replyToExternalId?: string;
  /** For kind 'edit' and 'delete': the message changed. */
  targetExternalId?: string;
  interactive?: { id: string; title?: string; payload?: string };
  forwarded?: boolean;
  /** The piece of the delivery this message came from (stored with `unsupported` ones). */
  raw: unknown;
}

export interface NeutralStatus {
  /** The platform's id of one of OUR outbound messages. */
  externalId: string;
  status: 'queued' | 'sent' | 'delivered' | 'read' | 'played' | 'failed' | 'deleted';
  at: string;
  recipientId?: string;
  /** The status also covers every earlier message of ours in that chat (Instagram's `read.mid`). */
  andEarlier?: boolean;
  error?: { code?: string | number; message?: string };
  /** Set when the platform names the message only by its server's row id (Codechat Go `messages.update`); externalId is then ''. */ serverRowId?: string;
}

export interface ParsedDelivery {
  messages: NeutralMessage[];
  statuses: NeutralStatus[];
}

/** A Unix time in seconds (number or numeric string) or milliseconds, as ISO; now when missing or invalid. */
export function isoFromUnix(value: unknown, unit: 's' | 'ms' = 's'): string {
  const n = typeof value === 'string' ? Number(value) : typeof value === 'number' ? value : NaN;
  if (!Number.isFinite(n) || n <= 0) return new Date().toISOString();
  return new Date(unit === 's' ? n * 1000 : n).toISOString();
}
