import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parseWhatsAppWebhook } from './parse.ts';

const FIXTURES = fileURLToPath(new URL('../../../../test/fixtures/platforms/whatsapp/', import.meta.url));
const fixture = (name: string): unknown => {
  if (!existsSync(FIXTURES)) throw new Error(`fixtures folder missing: ${FIXTURES}`);
  return JSON.parse(readFileSync(`${FIXTURES}${name}.json`, 'utf8'));
};

/** A delivery with one change of the given field and value. */
const envelope = (value: Record<string, unknown>, field = 'messages') => ({
  object: 'whatsapp_business_account',
  entry: [{ id: 'WABA', changes: [{ field, value: { messaging_product: 'whatsapp', metadata: { display_phone_number: '15550001111', phone_number_id: 'PNID' }, ...value } }] }],
});
const msg = (m: Record<string, unknown>, contacts: unknown[] = [{ profile: { name: 'Ana' }, wa_id: '5581987885943' }]) =>
  envelope({ contacts, messages: [{ from: '5581987885943', id: 'wamid.A', timestamp: '1700000000', ...m }] });

describe('WhatsApp Cloud webhooks → neutral messages (fixtures)', () => {
  it('text, with the contact name and phone', () => {
    const { messages, statuses } = parseWhatsAppWebhook(fixture('text'));
    assert.equal(statuses.length, 0);
    assert.equal(messages.length, 1);
    const m = messages[0]!;
    assert.deepEqual([m.externalId, m.kind, m.text, m.isEcho, m.chatId], ['wamid.xyzxyz', 'text', 'Body Text', false, '972987654321']);
    assert.deepEqual(m.sender, { externalId: '972987654321', phone: '972987654321', displayName: 'Test Name' });
    assert.equal(m.sentAt, new Date(1697043223 * 1000).toISOString());
  });

  it('voice note, image, reply, reaction', () => {
    const voice = parseWhatsAppWebhook(fixture('audio_voice')).messages[0]!;
    assert.equal(voice.kind, 'voice');
    assert.deepEqual(voice.media, { source: { kind: 'platform_id', value: '1234567890987654321' }, mime: 'audio/ogg; codecs=opus', sha256: 'm04pFf2ERdaopTyFkGPA0+bX3i+YY2dYgVFwOgDLSDI=', voice: true });
    const image = parseWhatsAppWebhook(fixture('image')).messages[0]!;
    assert.deepEqual([image.kind, image.media?.source.value, image.media?.mime], ['image', '65463453', 'image/jpeg']);
    const reply = parseWhatsAppWebhook(fixture('reply_text')).messages[0]!;
    assert.deepEqual([reply.kind, reply.text, reply.replyToExternalId], ['text', 'replied text', 'wamid.xyzxyz==']);
    const reaction = parseWhatsAppWebhook(fixture('reaction')).messages[0]!;
    assert.deepEqual([reaction.kind, reaction.reaction], ['reaction', { targetExternalId: 'wamid.yzxyzx=', emoji: '😮' }]);
  });

  it('delivery and read statuses', () => {
    const d = parseWhatsAppWebhook(fixture('status_delivered'));
    assert.equal(d.messages.length, 0);
    assert.deepEqual(d.statuses, [{ externalId: 'wamid.xyzxyz', status: 'delivered', at: new Date(1698266945 * 1000).toISOString(), recipientId: '972987654321' }]);
    assert.equal(parseWhatsAppWebhook(fixture('status_read')).statuses[0]?.status, 'read');
  });
});

describe('WhatsApp Cloud quirks (CONNECTORS.md §10)', () => {
  it('reaction removal with emoji "" and with no emoji key', () => {
    for (const reaction of [{ message_id: 'wamid.T', emoji: '' }, { message_id: 'wamid.T' }]) {
      const m = parseWhatsAppWebhook(msg({ type: 'reaction', reaction })).messages[0]!;
      assert.deepEqual(m.reaction, { targetExternalId: 'wamid.T', emoji: null });
    }
  });

  it('edit: an update of the original message', () => {
    const m = parseWhatsAppWebhook(msg({ type: 'edit', edit: { original_message_id: 'wamid.ORIG', message: { type: 'text', text: { body: 'fixed typo' } } } })).messages[0]!;
    assert.deepEqual([m.kind, m.targetExternalId, m.text], ['edit', 'wamid.ORIG', 'fixed typo']);
  });

  it('interactive replies, and an interactive with value.errors and no body does not crash', () => {
    const b = parseWhatsAppWebhook(msg({ type: 'interactive', interactive: { type: 'button_reply', button_reply: { id: 'yes', title: 'Yes' } } })).messages[0]!;
    assert.deepEqual([b.kind, b.interactive], ['interactive_reply', { id: 'yes', title: 'Yes' }]);
    const l = parseWhatsAppWebhook(msg({ type: 'interactive', interactive: { type: 'list_reply', list_reply: { id: 'row-2', title: 'Second', description: 'd' } } })).messages[0]!;
    assert.equal(l.interactive?.id, 'row-2');
    const broken = parseWhatsAppWebhook(envelope({ messages: [{ from: '1', id: 'wamid.E', timestamp: '1700000000', type: 'interactive' }], errors: [{ code: 131051 }] }));
    assert.equal(broken.messages[0]?.kind, 'unsupported');
  });

  it('unsupported messages are kept with their raw payload', () => {
    const raw = { type: 'unsupported', errors: [{ code: 131051, title: 'Message type unknown' }] };
    const m = parseWhatsAppWebhook(msg(raw)).messages[0]!;
    assert.equal(m.kind, 'unsupported');
    assert.deepEqual((m.raw as { errors: unknown }).errors, raw.errors);
  });

  it('statuses without contacts, out of order, with errors; played', () => {
    const d = parseWhatsAppWebhook(
      envelope({
        statuses: [
          { id: 'wamid.1', status: 'read', timestamp: '1700000010', recipient_id: '5581987885943' },
          { id: 'wamid.1', status: 'delivered', timestamp: '1700000005', recipient_id: '5581987885943' },
          { id: 'wamid.2', status: 'failed', timestamp: '1700000020', recipient_id: '5581987885943', errors: [{ code: 131047, title: 'Re-engagement message', message: 'More than 24 hours have passed' }] },
          { id: 'wamid.3', status: 'played', timestamp: '1700000030', recipient_id: '5581987885943' },
          { id: 'wamid.4', status: 'nonsense', timestamp: '1700000030' },
        ],
      }),
    );
    assert.deepEqual(d.statuses.map((s) => s.status), ['read', 'delivered', 'failed', 'played']);
    assert.deepEqual(d.statuses[2]!.error, { code: 131047, message: 'More than 24 hours have passed' });
  });

  it('a BSUID sender with no wa_id: identified by user_id, no phone', () => {
    const d = parseWhatsAppWebhook(envelope({ contacts: [{ profile: { name: 'Bo', username: 'bo' }, user_id: 'BR.1502576394655843' }], messages: [{ from_user_id: 'BR.1502576394655843', id: 'wamid.B', timestamp: '1700000000', type: 'text', text: { body: 'hi' } }] }));
    assert.deepEqual(d.messages[0]!.sender, { externalId: 'BR.1502576394655843', displayName: 'Bo', username: 'bo' });
  });

  it('smb_message_echoes come in their own field and are echoes addressed to the customer', () => {
    const d = parseWhatsAppWebhook(envelope({ message_echoes: [{ from: '15550001111', to: '5581987885943', id: 'wamid.ECHO', timestamp: '1700000000', type: 'text', text: { body: 'sent from the phone app' } }] }, 'smb_message_echoes'));
    const m = d.messages[0]!;
    assert.deepEqual([m.isEcho, m.chatId, m.text], [true, '5581987885943', 'sent from the phone app']);
  });

  it('batched envelopes: several entries, changes, messages and statuses in one POST', () => {
    const one = msg({ type: 'text', text: { body: 'a' } });
    const body = {
      object: 'whatsapp_business_account',
      entry: [
        { id: 'W', changes: [one.entry[0]!.changes[0]!, { field: 'messages', value: { statuses: [{ id: 'wamid.S', status: 'sent', timestamp: '1700000000' }] } }] },
        { id: 'W', changes: [{ field: 'messages', value: { messages: [{ from: '1', id: 'wamid.X', timestamp: '1', type: 'text', text: { body: 'b' } }, { from: '1', id: 'wamid.Y', timestamp: '1', type: 'location', location: { latitude: -8.05, longitude: -34.9, name: 'Recife' } }] } }] },
      ],
    };
    const d = parseWhatsAppWebhook(body);
    assert.deepEqual(d.messages.map((m) => m.externalId), ['wamid.A', 'wamid.X', 'wamid.Y']);
    assert.deepEqual(d.messages[2]!.location, { lat: -8.05, lng: -34.9, name: 'Recife' });
    assert.equal(d.statuses.length, 1);
  });

  it('documents, stickers, contacts, forwarded', () => {
    const doc = parseWhatsAppWebhook(msg({ type: 'document', document: { id: 'D1', filename: 'invoice.pdf', mime_type: 'application/pdf', caption: 'here' } })).messages[0]!;
    assert.deepEqual([doc.kind, doc.media?.fileName, doc.text], ['document', 'invoice.pdf', 'here']);
    assert.equal(parseWhatsAppWebhook(msg({ type: 'sticker', sticker: { id: 'S1', mime_type: 'image/webp', animated: true } })).messages[0]!.media?.animated, true);
    const c = parseWhatsAppWebhook(msg({ type: 'contacts', contacts: [{ name: { formatted_name: 'Zé' }, phones: [{ phone: '+55 81 98788-5943', wa_id: '5581987885943', type: 'CELL' }] }] })).messages[0]!;
    assert.deepEqual(c.contacts, [{ name: 'Zé', phones: [{ number: '+55 81 98788-5943', waId: '5581987885943', type: 'CELL' }], emails: [] }]);
    assert.equal(parseWhatsAppWebhook(msg({ type: 'text', text: { body: 'fwd' }, context: { forwarded: true } })).messages[0]!.forwarded, true);
  });

  it('never throws on malformed input', () => {
    for (const bad of [null, 'x', 42, [], {}, { entry: 'nope' }, { entry: [{ changes: [null, { value: { messages: [null, { id: 5 }, { id: 'w', type: 'image', image: {} }] } }] }] }]) {
      const d = parseWhatsAppWebhook(bad);
      assert.ok(Array.isArray(d.messages) && Array.isArray(d.statuses));
      for (const m of d.messages) assert.ok(['unsupported', 'text'].includes(m.kind));
    }
  });
});
