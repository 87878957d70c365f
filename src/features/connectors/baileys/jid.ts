import type { NeutralIdentity } from '../neutral.ts';
import { asString, defined } from './values.ts';

/**
 * WhatsApp JIDs as Baileys servers report them (CONNECTORS.md §6.2 "JID forms"):
 * `<digits>@s.whatsapp.net` a person by phone (`@c.us` in older tools), `<id>@g.us` a group,
 * `<id>@lid` a privacy "linked id" that carries NO phone, `status@broadcast` and `@newsletter`.
 */
export type JidKind = 'phone' | 'lid' | 'group' | 'broadcast' | 'newsletter' | 'other';

const JID = /^([^@:]+)(?::\d+)?@([a-z.]+)$/i;

/** The JID without a device suffix (`5511...:12@s.whatsapp.net` → `5511...@s.whatsapp.net`). */
export function normalizeJid(jid: string): string {
  const m = JID.exec(jid.trim());
  return m ? `${m[1]}@${m[2]!.toLowerCase()}` : jid.trim();
}

/** What a JID names, from its server part. */
export function jidKind(jid: string): JidKind {
  const server = JID.exec(jid.trim())?.[2]?.toLowerCase();
  switch (server) {
    case 's.whatsapp.net':
    case 'c.us':
      return 'phone';
    case 'lid':
      return 'lid';
    case 'g.us':
      return 'group';
    case 'broadcast':
      return 'broadcast';
    case 'newsletter':
      return 'newsletter';
    default:
      return 'other';
  }
}

/** The phone digits of a phone JID; undefined for any other JID (above all `@lid`). */
export function phoneFromJid(jid: string): string | undefined {
  if (jidKind(jid) !== 'phone') return undefined;
  const user = JID.exec(jid.trim())?.[1];
  return user && /^\d{6,20}$/.test(user) ? user : undefined;
}

/** A group chat. */
export function isGroupJid(jid: string): boolean {
  return jidKind(jid) === 'group';
}

/**
 * Chats that are not conversations: `status@broadcast` (stories, §6.2 "ignore it"), broadcast
 * lists, and channels (`@newsletter`).
 */
export function isIgnoredChat(jid: string): boolean {
  const kind = jidKind(jid);
  return kind === 'broadcast' || kind === 'newsletter';
}

/**
 * A person from the JIDs that name them: the first one is the id the platform reported (kept as
 * the external id, §8 rule 4), the others are alternates (`remoteJidAlt`, `participantAlt`,
 * `keyLid`, `keyParticipantLid`). The phone comes from whichever of them is a phone JID, so a
 * `@lid` sender still gets the phone its alternate carries, and never the digits of the lid.
 */
export function identityOf(jids: unknown[], displayName?: string): NeutralIdentity | undefined {
  const list = jids.map(asString).filter((j): j is string => j !== undefined).map(normalizeJid);
  const first = list[0];
  if (first === undefined) return undefined;
  const phone = list.map(phoneFromJid).find((p) => p !== undefined);
  return defined({ externalId: first, phone, displayName });
}
