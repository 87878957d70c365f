/**
 * The chat a webhook delivery is about, read cheaply from its JSON at acknowledgement time (a few
 * property reads, no full parse): deliveries of one chat are processed in arrival order, different
 * chats side by side (ArrivalOrder). '' when it cannot be told: such deliveries are ordered with
 * every other unknown one of the inbox. Only ordering depends on it, never correctness.
 */
type J = Record<string, unknown>;
const obj = (v: unknown): J => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as J) : {});
const first = (v: unknown): J => obj(Array.isArray(v) ? v[0] : undefined);
const id = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');

export function chatKey(platform: string, body: unknown): string {
  const b = obj(body);
  switch (platform) {
    case 'whatsapp': {
      const v = obj(first(first(b.entry).changes).value);
      return id(first(v.messages).from) || id(first(v.statuses).recipient_id) || id(first(v.message_echoes).to);
    }
    case 'instagram':
    case 'messenger': {
      const entry = first(b.entry);
      const ev = Object.keys(first(entry.messaging)).length ? first(entry.messaging) : Object.keys(first(entry.standby)).length ? first(entry.standby) : obj(first(entry.changes).value);
      // The same pair both ways (a customer's message and the page's echo to them).
      const pair = [id(obj(ev.sender).id), id(obj(ev.recipient).id)].filter(Boolean).sort();
      return pair.join(':');
    }
    case 'telegram': {
      const key = Object.keys(b).find((k) => k !== 'update_id');
      const u = obj(key ? b[key] : undefined);
      return id(obj(u.chat).id) || id(obj(obj(u.message).chat).id) || id(obj(u.from).id) || id(obj(u.user).id);
    }
    case 'codechat': {
      const d = obj(b.data);
      return id(d.keyRemoteJid) || id(d.remoteJid);
    }
    case 'evolution': {
      const d = obj(b.data);
      return id(obj(d.key).remoteJid) || id(d.remoteJid) || id(d.keyRemoteJid);
    }
    default:
      return '';
  }
}
