import type { InboxRow } from '../inboxes/inboxes.repo.ts';
import type { Platform } from '../inboxes/inboxes.schemas.ts';
import type { ParsedDelivery } from './neutral.ts';
import { firstHeader } from '../../platform/headers.ts';
import { checkMetaSignature, checkToken, type SignatureCheck } from './signatures.ts';
import { parseCodechatWebhook, parseEvolutionWebhook } from './baileys/parse.ts';
import { parseMetaWebhook } from './meta/parse.ts';
import { parseTelegramUpdate } from './telegram/parse.ts';
import { parseWhatsAppWebhook } from './whatsapp/parse.ts';

/** What arrives with a webhook delivery, as the connector needs it: the request's headers as Node gives them (not copied). */
export interface Delivery {
  raw: Buffer;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  query: Record<string, string | undefined>;
}

/** One header of a delivery (see firstHeader). */
export const header = (d: Pick<Delivery, 'headers'>, name: string): string | undefined => firstHeader(d.headers, name);

/**
 * One platform's inbound side: how its deliveries are authenticated and parsed. Every platform
 * lives in its own folder; this table ties them together.
 */
export interface InboundConnector {
  /** Authenticate a delivery on its raw bytes (constant-time comparisons). */
  check(d: Delivery, inbox: InboxRow, credentials: Record<string, string>): SignatureCheck;
  parse(json: unknown): ParsedDelivery;
  /** Meta's GET handshake: the challenge to echo, or null when the token is wrong. */
  challenge?(query: Record<string, string | undefined>, inbox: InboxRow): string | null;
}

const metaChallenge = (q: Record<string, string | undefined>, inbox: InboxRow): string | null =>
  q['hub.mode'] === 'subscribe' && q['hub.verify_token'] !== undefined && checkToken(q['hub.verify_token'], inbox.webhook_token) === 'ok' ? (q['hub.challenge'] ?? '') : null;

const CONNECTORS: Partial<Record<Platform, InboundConnector>> = {
  whatsapp: {
    check: (d, _inbox, creds) => checkMetaSignature(d.raw, header(d, 'x-hub-signature-256'), creds.app_secret),
    parse: parseWhatsAppWebhook,
    challenge: metaChallenge,
  },
  // Instagram and Messenger sign like WhatsApp, with the app secret.
  instagram: {
    check: (d, _inbox, creds) => checkMetaSignature(d.raw, header(d, 'x-hub-signature-256'), creds.app_secret),
    parse: (json) => parseMetaWebhook(json, 'instagram'),
    challenge: metaChallenge,
  },
  messenger: {
    check: (d, _inbox, creds) => checkMetaSignature(d.raw, header(d, 'x-hub-signature-256'), creds.app_secret),
    parse: (json) => parseMetaWebhook(json, 'messenger'),
    challenge: metaChallenge,
  },
  // Telegram echoes the secret_token given to setWebhook (the inbox's webhook token).
  telegram: {
    check: (d, inbox) => checkToken(header(d, 'x-telegram-bot-api-secret-token'), inbox.webhook_token),
    parse: (json) => parseTelegramUpdate(json),
  },
  // Codechat and Evolution sign nothing (CONNECTORS.md §10): the inbox's webhook URL carries a
  // secret token (?token=), or a proxy in front adds it as a header.
  codechat: {
    check: (d, inbox) => checkToken(d.query.token ?? header(d, 'x-parley-webhook-token'), inbox.webhook_token),
    parse: parseCodechatWebhook,
  },
  evolution: {
    check: (d, inbox) => checkToken(d.query.token ?? header(d, 'x-parley-webhook-token'), inbox.webhook_token),
    parse: parseEvolutionWebhook,
  },
};

export function inboundConnector(platform: string): InboundConnector | undefined {
  return CONNECTORS[platform as Platform];
}

/** Registers a platform's inbound side (each platform folder adds itself). */
export function registerInbound(platform: Platform, connector: InboundConnector): void {
  CONNECTORS[platform] = connector;
}

export { checkMetaSignature, checkToken, metaChallenge };
