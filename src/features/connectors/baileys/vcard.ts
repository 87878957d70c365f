import type { NeutralMessage } from '../neutral.ts';
import { asString, defined } from './values.ts';

export type NeutralContact = NonNullable<NeutralMessage['contacts']>[number];

const MAX_VCARD_CHARS = 64 * 1024;

/**
 * The name, phones and e-mails of a WhatsApp vCard (`contactMessage.vcard`), e.g.
 * `item1.TEL;waid=5511999999999:+55 11 99999-9999`: the `waid` parameter is the WhatsApp id,
 * the value the number as the sender's phone shows it. Folded lines are unfolded; an unreadable
 * card gives just the display name.
 */
export function contactFromVcard(vcard: unknown, displayName?: string): NeutralContact {
  const lines = unfold(asString(vcard)?.slice(0, MAX_VCARD_CHARS) ?? '');
  let fn: string | undefined;
  let n: string | undefined;
  const phones: NeutralContact['phones'] = [];
  const emails: string[] = [];
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const [prop = '', ...params] = line.slice(0, colon).split(';');
    const value = line.slice(colon + 1).trim();
    const name = prop.replace(/^item\d+\./i, '').toUpperCase();
    if (name === 'FN' && value) fn = unescape(value);
    else if (name === 'N' && value) n = unescape(value.split(';').filter(Boolean).reverse().join(' '));
    else if (name === 'TEL' && value) phones.push(defined({ number: value, waId: param(params, 'waid'), type: param(params, 'type') }));
    else if (name === 'EMAIL' && value) emails.push(value);
  }
  const contact: NeutralContact = { name: asString(displayName) ?? fn ?? n ?? '', phones };
  return emails.length > 0 ? { ...contact, emails } : contact;
}

function unfold(text: string): string[] {
  return text.replace(/\r\n?/g, '\n').replace(/\n[ \t]/g, '').split('\n');
}

function param(params: string[], key: string): string | undefined {
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq > 0 && p.slice(0, eq).trim().toLowerCase() === key) return asString(p.slice(eq + 1).trim());
  }
  return undefined;
}

function unescape(value: string): string {
  return value.replace(/\\([,;\\])/g, '$1').replace(/\\n/gi, ' ').trim();
}
