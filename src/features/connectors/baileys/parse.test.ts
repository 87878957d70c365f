import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { NeutralMessage, ParsedDelivery } from '../neutral.ts';
import { baileysDedupeKey, parseCodechatWebhook, parseEvolutionWebhook } from './parse.ts';

// The platform samples are kept in the repository (test/fixtures/platforms, a copy of the shared ones).
const FIXTURES = new URL('../../../../test/fixtures/platforms/', import.meta.url);

function fixturePath(rel: string): string {
  const path = fileURLToPath(new URL(rel, FIXTURES));
  if (!existsSync(path)) assert.fail(`fixture missing: ${path} (these tests read the shared fixtures next to the repository)`);
  return path;
}
const fixture = (rel: string): any => JSON.parse(readFileSync(fixturePath(rel), 'utf8'));
const iso = (seconds: number): string => new Date(seconds * 1000).toISOString();

function one(d: ParsedDelivery): NeutralMessage {
  assert.equal(d.statuses.length, 0, 'no statuses expected');
  assert.equal(d.messages.length, 1, `one message expected, got ${JSON.stringify(d.messages.map((m) => m.kind))}`);
  return d.messages[0]!;
}

const TOKEN = 'B6D711FC-SECRET-INSTANCE-TOKEN';
const OWNER = '558130001234@s.whatsapp.net';
const CONTACT = '5511988887777@s.whatsapp.net';
const GROUP = '120363041967849074@g.us';

/** An Evolution v2 body (§6.2): flat `key{…}` + `message{<type>: …}`, with the instance token inside. */
function evo(event: string, data: unknown): any {
  const base = { event, instance: 'atendimento', data, destination: 'https://relay.example.com/wh', date_time: '2025-05-20T08:15:02.123Z' };
  return { ...base, sender: OWNER, server_url: 'https://evo.example.com', apikey: TOKEN };
}
function evoMsg(message: Record<string, unknown>, key: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): any {
  return {
    key: { remoteJid: CONTACT, fromMe: false, id: 'EVO1', ...key },
    pushName: 'Ana',
    status: 'DELIVERY_ACK',
    message,
    messageType: Object.keys(message)[0],
    messageTimestamp: 1747739701,
    instanceId: 'uuid',
    source: 'android',
    ...extra,
  };
}
/** A Codechat v1 body: flat `key*` fields, `messageType` + `content` (the node itself). */
function cc(event: string, data: unknown): any {
  return { event, instance: { id: 3, name: 'loja-recife', ownerJid: OWNER, connectionStatus: 'ONLINE' }, data };
}
function ccMsg(messageType: string, content: unknown, extra: Record<string, unknown> = {}): any {
  const key = { keyId: 'CC1', keyFromMe: false, keyRemoteJid: CONTACT, keyLid: null, keyParticipant: null, keyParticipantLid: null };
  return { ...key, pushName: 'Ana', messageType, content, messageTimestamp: 1747749701, isGroup: false, info: { type: 'notify' }, ...extra };
}

const EXPECTATIONS: Record<string, () => void> = {
  'codechat/CONSTRUCTED_v1_messages_upsert_audio_ptt.json': () => {
    const body = fixture('codechat/CONSTRUCTED_v1_messages_upsert_audio_ptt.json');
    const m = one(parseCodechatWebhook(body));
    assert.equal(m.externalId, '3EB0C767D26A1D4E5F01');
    assert.equal(m.isEcho, false);
    assert.equal(m.chatId, '558187885943@s.whatsapp.net');
    assert.equal(m.isGroup, false);
    assert.deepEqual(m.sender, { externalId: '558187885943@s.whatsapp.net', phone: '558187885943', displayName: 'Maria' });
    assert.equal(m.sentAt, iso(1747749701));
    assert.equal(m.kind, 'voice');
    assert.deepEqual(m.media, {
      mime: 'audio/ogg; codecs=opus',
      sizeBytes: 9216,
      sha256: 'qGqzjDxcX8wA0o0Ckn9xTQfH5TRZ5DOb2fLxqQxq1Zk=',
      durationSec: 5,
      voice: true,
      // The public, unauthenticated download path (§6.3), never the encrypted mmg.whatsapp.net url.
      source: { kind: 'url', value: '/chat/public/audio/download?q=eyJtZWRpYUtleSI6Ii4uLiJ9' },
    });
    assert.equal(m.text, undefined);
    assert.equal((m.raw as any).keyId, '3EB0C767D26A1D4E5F01');
    assert.equal(baileysDedupeKey(body), 'loja-recife:3EB0C767D26A1D4E5F01');
    assert.deepEqual(parseEvolutionWebhook(body), { messages: [], statuses: [] }, 'a Codechat body is not an Evolution one');
  },
  'codechat/go_messages_upsert_text.json': () => {
    const body = fixture('codechat/go_messages_upsert_text.json');
    const m = one(parseCodechatWebhook(body));
    assert.equal(m.externalId, 'ABC123');
    assert.equal(m.isEcho, false);
    assert.equal(m.chatId, '5511999999999@s.whatsapp.net');
    assert.equal(m.isGroup, false);
    assert.deepEqual(m.sender, { externalId: '5511999999999@s.whatsapp.net', phone: '5511999999999', displayName: 'Cliente' });
    assert.equal(m.sentAt, '2026-07-04T18:00:00.000Z');
    assert.equal(m.kind, 'text');
    assert.equal(m.text, 'Ola');
    assert.equal(m.media, undefined);
    assert.equal(baileysDedupeKey(body), 'codechat:ABC123');
  },
  'evolution/CONSTRUCTED_messages_upsert_audio_ptt_with_base64.json': () => {
    const body = fixture('evolution/CONSTRUCTED_messages_upsert_audio_ptt_with_base64.json');
    const m = one(parseEvolutionWebhook(body));
    assert.equal(m.externalId, '3EB0C767D26A1D4E5F01');
    assert.equal(m.isEcho, false);
    // A @lid chat: the id stays what Evolution reported, the phone comes from remoteJidAlt only.
    assert.equal(m.chatId, '112233445566778@lid');
    assert.deepEqual(m.sender, { externalId: '112233445566778@lid', phone: '558187885943', displayName: 'Maria' });
    assert.equal(m.sentAt, iso(1747739701));
    assert.equal(m.kind, 'voice');
    assert.deepEqual(m.media, {
      mime: 'audio/ogg; codecs=opus',
      sizeBytes: 9216,
      sha256: 'qGqzjDxcX8wA0o0Ckn9xTQfH5TRZ5DOb2fLxqQxq1Zk=',
      durationSec: 5,
      voice: true,
      source: { kind: 'inline_base64', value: 'T2dnUwACAAAAAAAAAAA=' },
    });
    const raw = JSON.stringify(m.raw);
    assert.ok(!raw.includes(body.apikey), 'the instance token is not kept');
    assert.ok(!raw.includes('T2dnUwACAAAAAAAAAAA='), 'inline bytes are in media.source, not duplicated in raw');
    assert.equal((m.raw as any).key.id, '3EB0C767D26A1D4E5F01');
    assert.equal(baileysDedupeKey(body), 'atendimento:3EB0C767D26A1D4E5F01');
    assert.deepEqual(parseCodechatWebhook(body), { messages: [], statuses: [] }, 'an Evolution body is not a Codechat one');
  },
  'evolution/messages_upsert_text_fromme_redacted.json': () => {
    const body = fixture('evolution/messages_upsert_text_fromme_redacted.json');
    const m = one(parseEvolutionWebhook(body));
    assert.equal(m.externalId, '3AE99D6A1DBF3F9A0578');
    assert.equal(m.isEcho, true, 'fromMe: sent by the business');
    assert.equal(m.chatId, '558197088404@s.whatsapp.net');
    assert.equal(m.isGroup, false);
    // The echo's author is the instance owner (`sender`), not the contact.
    assert.deepEqual(m.sender, { externalId: '558196349077@s.whatsapp.net', phone: '558196349077' });
    assert.equal(m.sentAt, iso(1763771103), 'messageTimestamp, not the local-time date_time');
    assert.equal(m.kind, 'text');
    assert.equal(m.text, 'Texto da mensagem');
    assert.ok(!JSON.stringify(m).includes(body.apikey));
    assert.equal(baileysDedupeKey(body), 'nome-da-instancia:3AE99D6A1DBF3F9A0578');
  },
};

describe('Codechat / Evolution fixtures', () => {
  for (const [name, check] of Object.entries(EXPECTATIONS)) it(name, check);

  it('covers every fixture of the two folders', () => {
    const files = ['codechat', 'evolution'].flatMap((dir) => readdirSync(fixturePath(dir)).filter((f) => f.endsWith('.json')).map((f) => `${dir}/${f}`));
    assert.deepEqual(files.sort(), Object.keys(EXPECTATIONS).sort(), 'a fixture without expectations (or an expectation without fixture)');
  });
});

describe('message types', () => {
  it('text and extended text: reply-to from contextInfo.stanzaId, forwarded', () => {
    const context = { stanzaId: 'QUOTED1', participant: CONTACT, isForwarded: true, forwardingScore: 1 };
    const c = one(parseCodechatWebhook(cc('messages.upsert', ccMsg('extendedTextMessage', { text: 'see above', contextInfo: context }))));
    assert.deepEqual([c.kind, c.text, c.replyToExternalId, c.forwarded], ['text', 'see above', 'QUOTED1', true]);
    // Evolution rewrites extendedTextMessage to conversation and lifts contextInfo to the top of data.
    const e = one(parseEvolutionWebhook(evo('messages.upsert', evoMsg({ conversation: 'see above' }, {}, { contextInfo: context }))));
    assert.deepEqual([e.kind, e.text, e.replyToExternalId, e.forwarded], ['text', 'see above', 'QUOTED1', true]);
    const plain = one(parseEvolutionWebhook(evo('messages.upsert', evoMsg({ extendedTextMessage: { text: 'hi' } }))));
    assert.deepEqual([plain.kind, plain.text, plain.replyToExternalId, plain.forwarded], ['text', 'hi', undefined, undefined]);
  });

  it('image, video, document, audio, sticker: metadata, caption as text, media source', () => {
    const image = { url: 'https://mmg.whatsapp.net/x.enc', mimetype: 'image/jpeg', caption: 'look', fileSha256: 'c2hh', fileLength: { low: 51200, high: 0 }, height: 800, width: 600 };
    const e = one(parseEvolutionWebhook(evo('messages.upsert', evoMsg({ imageMessage: image, mediaUrl: 'https://s3.example.com/a.jpg' }))));
    assert.equal(e.kind, 'image');
    assert.equal(e.text, 'look');
    assert.deepEqual(e.media, { mime: 'image/jpeg', sizeBytes: 51200, sha256: 'c2hh', caption: 'look', width: 600, height: 800, source: { kind: 'url', value: 'https://s3.example.com/a.jpg' } });

    const video = one(parseCodechatWebhook(cc('messages.upsert', ccMsg('videoMessage', { mimetype: 'video/mp4', seconds: '12', gifPlayback: true }))));
    assert.deepEqual([video.kind, video.media?.durationSec, video.media?.animated], ['video', 12, true]);
    assert.deepEqual(video.media?.source, { kind: 'platform_id', value: 'CC1' }, 'no public path: fetch by message id');

    const doc = { mimetype: 'application/pdf', fileName: 'boleto.pdf', title: 'boleto', caption: 'segue', fileLength: '1024' };
    const d = one(parseEvolutionWebhook(evo('messages.upsert', evoMsg({ documentMessage: doc }))));
    assert.deepEqual([d.kind, d.text, d.media?.fileName, d.media?.mime, d.media?.sizeBytes], ['document', 'segue', 'boleto.pdf', 'application/pdf', 1024]);
    assert.deepEqual(d.media?.source, { kind: 'platform_id', value: 'EVO1' });
    const wrapped = one(parseEvolutionWebhook(evo('messages.upsert', evoMsg({ documentWithCaptionMessage: { message: { documentMessage: doc } } }))));
    assert.deepEqual([wrapped.kind, wrapped.media?.fileName], ['document', 'boleto.pdf']);

    const audio = one(parseCodechatWebhook(cc('messages.upsert', ccMsg('audioMessage', { mimetype: 'audio/mpeg', seconds: 180, ptt: false }))));
    assert.deepEqual([audio.kind, audio.media?.voice], ['audio', false]);
    const sticker = one(parseEvolutionWebhook(evo('messages.upsert', evoMsg({ stickerMessage: { mimetype: 'image/webp', isAnimated: true } }))));
    assert.deepEqual([sticker.kind, sticker.media?.animated, sticker.media?.mime], ['sticker', true, 'image/webp']);
  });

  it('location (and live location); without coordinates it is unsupported', () => {
    const loc = { degreesLatitude: -8.0476, degreesLongitude: -34.877, name: 'Marco Zero', address: 'Recife Antigo' };
    const m = one(parseEvolutionWebhook(evo('messages.upsert', evoMsg({ locationMessage: loc }))));
    assert.deepEqual([m.kind, m.location], ['location', { lat: -8.0476, lng: -34.877, name: 'Marco Zero', address: 'Recife Antigo' }]);
    const live = one(parseCodechatWebhook(cc('messages.upsert', ccMsg('liveLocationMessage', { degreesLatitude: 1.5, degreesLongitude: '2.5' }))));
    assert.deepEqual(live.location, { lat: 1.5, lng: 2.5 });
    const bad = one(parseCodechatWebhook(cc('messages.upsert', ccMsg('locationMessage', { name: 'nowhere' }))));
    assert.equal(bad.kind, 'unsupported');
  });

  it('contacts: vCard name, phones with waid and type; arrays of contacts', () => {
    const vcard = 'BEGIN:VCARD\nVERSION:3.0\nN:Silva;Maria;;;\nFN:Maria Silva\nitem1.TEL;waid=5581987885943:+55 81 98788-5943\nitem1.X-ABLabel:Celular\nTEL;type=CELL;type=VOICE;waid=551133334444:+55 11 3333-4444\nEMAIL:maria@example.com\nEND:VCARD';
    const m = one(parseEvolutionWebhook(evo('messages.upsert', evoMsg({ contactMessage: { displayName: 'Maria', vcard } }))));
    assert.equal(m.kind, 'contacts');
    assert.deepEqual(m.contacts, [
      {
        name: 'Maria',
        phones: [
          { number: '+55 81 98788-5943', waId: '5581987885943' },
          { number: '+55 11 3333-4444', waId: '551133334444', type: 'CELL' },
        ],
        emails: ['maria@example.com'],
      },
    ]);
    const many = { displayName: '2 contatos', contacts: [{ vcard: 'BEGIN:VCARD\r\nFN:João\r\nTEL:+5511999990000\r\nEND:VCARD' }, { displayName: 'Zé', vcard: 42 }] };
    const arr = one(parseCodechatWebhook(cc('messages.upsert', ccMsg('contactsArrayMessage', many))));
    assert.deepEqual(arr.contacts, [{ name: 'João', phones: [{ number: '+5511999990000' }] }, { name: 'Zé', phones: [] }]);
  });

  it('reactions: the target is key.id, an empty text removes the reaction', () => {
    const add = one(parseEvolutionWebhook(evo('messages.upsert', evoMsg({ reactionMessage: { key: { remoteJid: CONTACT, fromMe: true, id: 'TARGET1' }, text: '👍', senderTimestampMs: '1747739701000' } }))));
    assert.deepEqual([add.kind, add.reaction], ['reaction', { targetExternalId: 'TARGET1', emoji: '👍' }]);
    const removed = one(parseCodechatWebhook(cc('messages.upsert', ccMsg('reactionMessage', { key: { id: 'TARGET1' }, text: '' }))));
    assert.deepEqual(removed.reaction, { targetExternalId: 'TARGET1', emoji: null });
    const noTarget = one(parseCodechatWebhook(cc('messages.upsert', ccMsg('reactionMessage', { text: '👍' }))));
    assert.equal(noTarget.kind, 'unsupported');
  });

  it('protocolMessage: REVOKE deletes, MESSAGE_EDIT edits, other types are unsupported', () => {
    const revoke = (type: unknown) => one(parseCodechatWebhook(cc('messages.upsert', ccMsg('protocolMessage', { key: { remoteJid: CONTACT, fromMe: false, id: 'OLD1' }, type }, { keyId: 'PROTO1' }))));
    for (const type of [0, 'REVOKE', undefined]) {
      const m = revoke(type);
      assert.deepEqual([m.externalId, m.kind, m.targetExternalId], ['PROTO1', 'delete', 'OLD1'], `type ${String(type)}`);
    }
    assert.equal(revoke(3).kind, 'unsupported', 'EPHEMERAL_SETTING');
    const edit = { key: { id: 'OLD1' }, type: 14, editedMessage: { extendedTextMessage: { text: 'fixed typo' } } };
    const e = one(parseEvolutionWebhook(evo('messages.upsert', evoMsg({ editedMessage: { message: { protocolMessage: edit } } }))));
    assert.deepEqual([e.externalId, e.kind, e.targetExternalId, e.text], ['EVO1', 'edit', 'OLD1', 'fixed typo']);
    const caption = { key: { id: 'OLD2' }, type: 'MESSAGE_EDIT', editedMessage: { imageMessage: { caption: 'new caption' } } };
    const c = one(parseCodechatWebhook(cc('messages.upsert', ccMsg('protocolMessage', caption))));
    assert.deepEqual([c.kind, c.targetExternalId, c.text], ['edit', 'OLD2', 'new caption']);
  });

  it('Evolution messages.edited and messages.delete events', () => {
    const edited = { key: { remoteJid: CONTACT, fromMe: false, id: 'OLD1' }, type: 14, editedMessage: { conversation: 'v2' }, timestampMs: '1747739800000' };
    const e = one(parseEvolutionWebhook(evo('messages.edited', edited)));
    assert.deepEqual([e.kind, e.targetExternalId, e.text, e.isEcho, e.chatId, e.sentAt], ['edit', 'OLD1', 'v2', false, CONTACT, iso(1747739800)]);
    assert.equal(e.externalId, `OLD1:edit:${iso(1747739800)}`);
    assert.equal(baileysDedupeKey(evo('messages.edited', edited)), 'atendimento:OLD1:edit:1747739800000');
    const revoked = { key: { remoteJid: CONTACT, fromMe: false, id: 'OLD3' }, type: 'REVOKE' };
    assert.deepEqual(one(parseEvolutionWebhook(evo('messages.edited', revoked))).externalId, 'OLD3:delete');

    const deleted = { remoteJid: GROUP, fromMe: false, id: 'OLD4', participant: '5581999990000@s.whatsapp.net', status: 'DELETED' };
    const d = one(parseEvolutionWebhook(evo('messages.delete', deleted)));
    assert.deepEqual([d.externalId, d.kind, d.targetExternalId, d.chatId, d.isGroup], ['OLD4:delete', 'delete', 'OLD4', GROUP, true]);
    assert.deepEqual(d.sender, { externalId: '5581999990000@s.whatsapp.net', phone: '5581999990000' });
    assert.equal(baileysDedupeKey(evo('messages.delete', deleted)), 'atendimento:OLD4:delete', 'not the key of the message it deletes');
    const ours = one(parseEvolutionWebhook(evo('messages.delete', { ...deleted, remoteJid: CONTACT, participant: undefined, fromMe: true })));
    assert.equal(ours.isEcho, true, 'the business revoked its own message outside Parley');
  });

  it('button and list replies are interactive replies', () => {
    const b = one(parseEvolutionWebhook(evo('messages.upsert', evoMsg({ buttonsResponseMessage: { selectedButtonId: 'yes', selectedDisplayText: 'Sim' } }))));
    assert.deepEqual([b.kind, b.interactive], ['interactive_reply', { id: 'yes', title: 'Sim' }]);
    const l = one(parseCodechatWebhook(cc('messages.upsert', ccMsg('listResponseMessage', { title: 'Plano B', singleSelectReply: { selectedRowId: 'plan_b' } }))));
    assert.deepEqual(l.interactive, { id: 'plan_b', title: 'Plano B' });
  });

  it('wrappers (ephemeral, view once) are opened', () => {
    const m = one(parseEvolutionWebhook(evo('messages.upsert', evoMsg({ ephemeralMessage: { message: { viewOnceMessageV2: { message: { imageMessage: { mimetype: 'image/png' } } } } } }))));
    assert.deepEqual([m.kind, m.media?.mime], ['image', 'image/png']);
    const c = one(parseCodechatWebhook(cc('messages.upsert', ccMsg('ephemeralMessage', { message: { conversation: 'psst' } }))));
    assert.deepEqual([c.kind, c.text], ['text', 'psst']);
  });

  it('anything else is unsupported, with its raw data', () => {
    const poll = { pollCreationMessageV3: { name: 'Lunch?', options: [{ optionName: 'yes' }] } };
    const m = one(parseEvolutionWebhook(evo('messages.upsert', evoMsg(poll))));
    assert.equal(m.kind, 'unsupported');
    assert.deepEqual((m.raw as any).message, poll);
    const c = one(parseCodechatWebhook(cc('messages.upsert', ccMsg('orderMessage', { orderId: '1' }))));
    assert.deepEqual([c.kind, (c.raw as any).messageType], ['unsupported', 'orderMessage']);
  });
});

describe('statuses (messages.update, §9 status mapping)', () => {
  it('Evolution: Baileys numbers and names; only for our messages; participant as recipient', () => {
    const cases: Array<[unknown, string]> = [[0, 'failed'], [1, 'queued'], [2, 'sent'], [3, 'delivered'], [4, 'read'], [5, 'played'], ['3', 'delivered'], ['ERROR', 'failed'], ['PENDING', 'queued'], ['SERVER_ACK', 'sent'], ['DELIVERY_ACK', 'delivered'], ['READ', 'read'], ['PLAYED', 'played'], ['DELETED', 'deleted']];
    for (const [status, expected] of cases) {
      const d = parseEvolutionWebhook(evo('messages.update', { messageId: 'cm9rowid', keyId: 'OUT1', remoteJid: CONTACT, fromMe: true, status, instanceId: 'uuid' }));
      assert.equal(d.messages.length, 0);
      assert.equal(d.statuses.length, 1, String(status));
      const s = d.statuses[0]!;
      assert.deepEqual([s.externalId, s.status, s.recipientId], ['OUT1', expected, CONTACT], String(status));
      assert.ok(Number.isFinite(Date.parse(s.at)));
    }
    const group = parseEvolutionWebhook(evo('messages.update', { keyId: 'OUT2', remoteJid: GROUP, participant: '5581999990000:3@s.whatsapp.net', fromMe: true, status: 'READ' }));
    assert.equal(group.statuses[0]?.recipientId, '5581999990000@s.whatsapp.net');
    // Our own read receipts of received messages, edits' defaulted status, unknown names: nothing.
    for (const data of [{ keyId: 'IN1', remoteJid: CONTACT, fromMe: false, status: 'READ' }, { keyId: 'OUT3', fromMe: true, status: 'SERVER_ACK', message: { editedMessage: {} } }, { keyId: 'OUT4', fromMe: true, status: 'EDITED' }, { fromMe: true, status: 'READ' }]) {
      assert.deepEqual(parseEvolutionWebhook(evo('messages.update', data)), { messages: [], statuses: [] }, JSON.stringify(data));
    }
    assert.equal(baileysDedupeKey(evo('messages.update', { keyId: 'OUT1', status: 'READ' })), 'atendimento:OUT1:READ', 'not the key of the message itself');
  });

  it('Codechat v1: WhatsApp id and Baileys names, with dateTime', () => {
    const data = { remoteJid: CONTACT, id: 'OUT1', fromMe: true, status: 'DELIVERY_ACK', dateTime: '2025-05-20T14:00:00.000Z', instanceId: 3 };
    assert.deepEqual(parseCodechatWebhook(cc('messages.update', data)).statuses, [{ externalId: 'OUT1', status: 'delivered', at: '2025-05-20T14:00:00.000Z', recipientId: CONTACT }]);
    assert.equal(parseCodechatWebhook(cc('messages.update', { ...data, fromMe: false })).statuses.length, 0);
    assert.equal(baileysDedupeKey(cc('messages.update', data)), 'loja-recife:OUT1:DELIVERY_ACK');
  });

  it("Codechat Go: lowercase names, server_error → failed, retry → queued; the row id is not a WhatsApp id", () => {
    const cases: Array<[string, string | undefined]> = [['sent', 'sent'], ['delivered', 'delivered'], ['read', 'read'], ['played', 'played'], ['server_error', 'failed'], ['retry', 'queued'], ['unknown', undefined]];
    for (const [status, expected] of cases) {
      const body = { ...cc('messages.update', { dateTime: '2026-07-04T18:05:00Z', messageId: 1024, status }), timestamp: '2026-07-04T18:00:00Z' };
      const d = parseCodechatWebhook(body);
      if (!expected) {
        assert.equal(d.statuses.length, 0, status);
        continue;
      }
      assert.deepEqual(d.statuses, [{ externalId: '', serverRowId: '1024', status: expected, at: '2026-07-04T18:05:00.000Z' }], status);
      assert.equal(baileysDedupeKey(body), `loja-recife:row-1024:${status}`);
    }
  });
});

describe('timestamps', () => {
  const at = (ts: unknown) => one(parseEvolutionWebhook(evo('messages.upsert', evoMsg({ conversation: 'x' }, {}, { messageTimestamp: ts })))).sentAt;
  it('seconds as number, string or protobuf Long; milliseconds', () => {
    assert.equal(at(1747739701), iso(1747739701));
    assert.equal(at('1747739701'), iso(1747739701));
    assert.equal(at({ low: 1747739701, high: 0, unsigned: true }), iso(1747739701));
    assert.equal(at({ low: -1, high: 0 }), iso(4294967295), 'low is read unsigned');
    assert.equal(at(1747739701123), '2025-05-20T11:15:01.123Z');
  });
  it('missing, absurd or negative: now, never a throw (Evolution date_time is local time, not used)', () => {
    for (const ts of [undefined, null, 'soon', -5, 0, 1e20, Number.MAX_VALUE, { low: 'x' }]) {
      const before = Date.now();
      const sent = Date.parse(at(ts));
      assert.ok(sent >= before - 1000 && sent <= Date.now() + 1000, `${String(ts)} → ${new Date(sent).toISOString()}`);
    }
  });
});

describe('quirks (CONNECTORS.md §10, Codechat / Evolution)', () => {
  it('@lid JIDs: the phone only from remoteJidAlt / keyLid / participantAlt, never the digits of a lid', () => {
    const noAlt = one(parseEvolutionWebhook(evo('messages.upsert', evoMsg({ conversation: 'oi' }, { remoteJid: '112233445566778@lid' }))));
    assert.deepEqual(noAlt.sender, { externalId: '112233445566778@lid', displayName: 'Ana' });
    // Newer Evolution swaps them: remoteJid the phone JID, remoteJidAlt the lid.
    const swapped = one(parseEvolutionWebhook(evo('messages.upsert', evoMsg({ conversation: 'oi' }, { remoteJid: '558187885943@s.whatsapp.net', remoteJidAlt: '112233445566778@lid', addressingMode: 'pn' }))));
    assert.deepEqual(swapped.sender, { externalId: '558187885943@s.whatsapp.net', phone: '558187885943', displayName: 'Ana' });
    const ccLid = one(parseCodechatWebhook(cc('messages.upsert', ccMsg('conversation', { text: 'oi' }, { keyRemoteJid: '112233445566778@lid', keyLid: '558187885943@s.whatsapp.net' }))));
    assert.deepEqual([ccLid.chatId, ccLid.sender.externalId, ccLid.sender.phone], ['112233445566778@lid', '112233445566778@lid', '558187885943']);
    const onlyLid = one(parseCodechatWebhook(cc('messages.upsert', ccMsg('conversation', { text: 'oi' }, { keyRemoteJid: null, keyLid: '112233445566778@lid' }))));
    assert.deepEqual([onlyLid.chatId, onlyLid.sender.phone], ['112233445566778@lid', undefined]);
  });

  it('groups: chat is the group, the sender its participant (lid or phone, device suffix dropped)', () => {
    const key = { remoteJid: GROUP, participant: '998877665544332@lid', participantAlt: '5581999990000:12@s.whatsapp.net' };
    const e = one(parseEvolutionWebhook(evo('messages.upsert', evoMsg({ conversation: 'bom dia' }, key, { pushName: 'Zé' }))));
    assert.deepEqual([e.chatId, e.isGroup], [GROUP, true]);
    assert.deepEqual(e.sender, { externalId: '998877665544332@lid', phone: '5581999990000', displayName: 'Zé' });
    const extra = { keyRemoteJid: GROUP, isGroup: true, keyParticipant: '5581999990000:7@s.whatsapp.net', keyParticipantLid: '998877665544332@lid', pushName: 'Zé' };
    const c = one(parseCodechatWebhook(cc('messages.upsert', ccMsg('conversation', { text: 'bom dia' }, extra))));
    assert.deepEqual([c.chatId, c.isGroup], [GROUP, true]);
    assert.deepEqual(c.sender, { externalId: '5581999990000@s.whatsapp.net', phone: '5581999990000', displayName: 'Zé' });
    const ours = one(parseEvolutionWebhook(evo('messages.upsert', evoMsg({ conversation: 'oi grupo' }, { remoteJid: GROUP, fromMe: true, participant: OWNER }))));
    assert.deepEqual([ours.isEcho, ours.sender.externalId], [true, OWNER]);
  });

  it('fromMe duplicates: an API send arrives as send.message and as messages.upsert; both echoes, one dedupe key', () => {
    const data = evoMsg({ conversation: 'Seu pedido saiu' }, { id: '3EB0SENT', fromMe: true }, { status: 'PENDING' });
    const viaSend = one(parseEvolutionWebhook(evo('send.message', data)));
    const viaUpsert = one(parseEvolutionWebhook(evo('messages.upsert', data)));
    assert.deepEqual([viaSend.isEcho, viaUpsert.isEcho, viaSend.externalId, viaUpsert.externalId], [true, true, '3EB0SENT', '3EB0SENT']);
    assert.equal(baileysDedupeKey(evo('send.message', data)), baileysDedupeKey(evo('messages.upsert', data)));
    const ccData = ccMsg('conversation', { text: 'Seu pedido saiu' }, { keyId: '3EB0SENT', keyFromMe: true, pushName: null });
    const ccSend = one(parseCodechatWebhook(cc('send.message', ccData)));
    assert.deepEqual([ccSend.isEcho, ccSend.sender.externalId, ccSend.chatId], [true, OWNER, CONTACT]);
    assert.equal(baileysDedupeKey(cc('send.message', ccData)), baileysDedupeKey(cc('messages.upsert', ccData)));
    // send.message is an echo even when fromMe is missing.
    const bare = evoMsg({ conversation: 'x' }, { fromMe: undefined });
    assert.equal(one(parseEvolutionWebhook(evo('send.message', bare))).isEcho, true);
  });

  it('the apikey inside the Evolution payload is never kept, wherever it sits', () => {
    const data = { ...evoMsg({ conversation: 'oi', apikey: TOKEN }), apikey: TOKEN, token: TOKEN };
    const d = parseEvolutionWebhook(evo('messages.upsert', data));
    assert.equal(d.messages.length, 1);
    assert.ok(!JSON.stringify(d).includes(TOKEN));
    assert.ok(!JSON.stringify(parseEvolutionWebhook(evo('messages.delete', { remoteJid: CONTACT, id: 'X', apikey: TOKEN }))).includes(TOKEN));
  });

  it('public Codechat media paths are url sources; without one the media is fetched by message id', () => {
    const image = ccMsg('imageMessage', { mimetype: 'image/jpeg', url: 'https://mmg.whatsapp.net/enc' }, { media: { path: '/chat/public/image/download?q=abc' } });
    assert.deepEqual(one(parseCodechatWebhook(cc('messages.upsert', image))).media?.source, { kind: 'url', value: '/chat/public/image/download?q=abc' });
    const go = ccMsg('imageMessage', { mimetype: 'image/jpeg', URL: 'https://mmg.whatsapp.net/enc' }, { keyId: 'GO1' });
    assert.deepEqual(one(parseCodechatWebhook(cc('messages.upsert', go))).media?.source, { kind: 'platform_id', value: 'GO1' });
  });

  it('flat (Evolution) and nested (Codechat) shapes of one message give the same content', () => {
    const node = { mimetype: 'application/pdf', fileName: 'nf.pdf', caption: 'nota', contextInfo: { stanzaId: 'Q1' } };
    const e = one(parseEvolutionWebhook(evo('messages.upsert', evoMsg({ documentMessage: node }, { id: 'SAME' }))));
    const c = one(parseCodechatWebhook(cc('messages.upsert', ccMsg('documentMessage', node, { keyId: 'SAME' }))));
    const content = (m: NeutralMessage) => ({ kind: m.kind, text: m.text, fileName: m.media?.fileName, mime: m.media?.mime, replyTo: m.replyToExternalId, chatId: m.chatId, sender: m.sender });
    assert.deepEqual(content(e), content(c));
    // A Codechat shape posted to the Evolution parser (and back) is not misread.
    assert.deepEqual(parseEvolutionWebhook(cc('messages.upsert', ccMsg('conversation', { text: 'x' }))), { messages: [], statuses: [] });
    assert.deepEqual(parseCodechatWebhook(evo('messages.upsert', evoMsg({ conversation: 'x' }))), { messages: [], statuses: [] });
  });

  it('status@broadcast, broadcast lists and channels are not conversations', () => {
    for (const remoteJid of ['status@broadcast', '1747739701@broadcast', '120363000000000000@newsletter']) {
      assert.deepEqual(parseEvolutionWebhook(evo('messages.upsert', evoMsg({ conversation: 'story' }, { remoteJid }))).messages, [], remoteJid);
      assert.deepEqual(parseCodechatWebhook(cc('messages.upsert', ccMsg('conversation', { text: 'story' }, { keyRemoteJid: remoteJid }))).messages, [], remoteJid);
    }
  });

  it("Evolution's enum spelling of events and batched data arrays", () => {
    const d = parseEvolutionWebhook(evo('MESSAGES_UPSERT', [evoMsg({ conversation: 'a' }, { id: 'A' }), evoMsg({ conversation: 'b' }, { id: 'B' })]));
    assert.deepEqual(d.messages.map((m) => m.externalId), ['A', 'B']);
    assert.equal(baileysDedupeKey(evo('messages.upsert', [evoMsg({ conversation: 'a' }, { id: 'A' }), evoMsg({ conversation: 'b' }, { id: 'B' })])), null, 'dedupe a batch per message');
  });
});

describe('malformed input: empty or unsupported, never an exception', () => {
  const EMPTY = { messages: [], statuses: [] };
  const bodies: unknown[] = [null, undefined, 'messages.upsert', 42, true, [], [{}], {}, { event: 'messages.upsert' }, { event: 'messages.upsert', data: null }, { event: 'messages.upsert', data: 'x' }, { event: 'messages.upsert', data: [null, 1, 'x', []] }, { event: 42, data: {} }, { event: 'connection.update', instance: 'x', data: { state: 'open' } }];
  it('bodies of the wrong shape give an empty delivery and no dedupe key', () => {
    for (const body of bodies) {
      assert.deepEqual(parseEvolutionWebhook(body), EMPTY, JSON.stringify(body));
      assert.deepEqual(parseCodechatWebhook(body), EMPTY, JSON.stringify(body));
      assert.equal(baileysDedupeKey(body), null, JSON.stringify(body));
    }
  });

  it('missing ids or chats drop the item; a missing or odd message is unsupported', () => {
    assert.deepEqual(parseEvolutionWebhook(evo('messages.upsert', { key: { remoteJid: CONTACT }, message: { conversation: 'x' } })), EMPTY);
    assert.deepEqual(parseEvolutionWebhook(evo('messages.upsert', { key: { id: 'X' }, message: { conversation: 'x' } })), EMPTY);
    assert.deepEqual(parseCodechatWebhook(cc('messages.upsert', { keyId: 'X', content: { text: 'x' } })), EMPTY);
    for (const message of [null, 'text', [], {}, { conversation: 42 }, { imageMessage: 'x' }, { constructor: {} }, JSON.parse('{"__proto__": {"conversation": "x"}}')]) {
      const m = one(parseEvolutionWebhook(evo('messages.upsert', { key: { remoteJid: CONTACT, id: 'X' }, message })));
      assert.equal(m.kind, 'unsupported', JSON.stringify(message));
    }
    const ccOdd = one(parseCodechatWebhook(cc('messages.upsert', { keyId: 'X', keyRemoteJid: CONTACT, messageType: 'toString', content: null })));
    assert.equal(ccOdd.kind, 'unsupported');
  });

  it('hostile nesting does not exhaust the stack', () => {
    let deep: Record<string, unknown> = { conversation: 'bottom' };
    for (let i = 0; i < 100_000; i++) deep = { ephemeralMessage: { message: deep } };
    const m = one(parseEvolutionWebhook(evo('messages.upsert', evoMsg(deep))));
    assert.equal(m.kind, 'unsupported');
  });

  it('randomly damaged deliveries (deterministic fuzz) parse to well-formed results', () => {
    const seeds = [
      fixture('codechat/CONSTRUCTED_v1_messages_upsert_audio_ptt.json'),
      fixture('codechat/go_messages_upsert_text.json'),
      fixture('evolution/CONSTRUCTED_messages_upsert_audio_ptt_with_base64.json'),
      fixture('evolution/messages_upsert_text_fromme_redacted.json'),
      evo('messages.update', { keyId: 'OUT1', remoteJid: GROUP, participant: CONTACT, fromMe: true, status: 3 }),
      evo('messages.edited', { key: { remoteJid: CONTACT, id: 'OLD1' }, type: 14, editedMessage: { conversation: 'v2' } }),
      cc('messages.upsert', ccMsg('contactMessage', { displayName: 'M', vcard: 'BEGIN:VCARD\nTEL;waid=1:+1\nEND:VCARD' })),
    ];
    let state = 0x2545f491;
    const rand = (n: number): number => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state % n;
    };
    const WEIRD: unknown[] = [null, '', 0, -1, 1e308, 'x', [], {}, { low: 1, high: 2 }, true, '@lid', 'a@g.us', '__proto__', [null]];
    const damage = (v: unknown): unknown => {
      if (rand(6) === 0) return WEIRD[rand(WEIRD.length)];
      if (Array.isArray(v)) return v.map(damage);
      if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [rand(20) === 0 ? 'unexpected' : k, damage(x)]));
      return v;
    };
    let produced = 0;
    for (let i = 0; i < 600; i++) {
      const body = damage(seeds[i % seeds.length]);
      for (const d of [parseEvolutionWebhook(body), parseCodechatWebhook(body)]) {
        produced += d.messages.length + d.statuses.length;
        for (const m of d.messages) {
          assert.equal(typeof m.externalId, 'string');
          assert.equal(typeof m.chatId, 'string');
          assert.equal(typeof m.sender.externalId, 'string');
          assert.ok(Number.isFinite(Date.parse(m.sentAt)), m.sentAt);
        }
        for (const s of d.statuses) assert.ok(Number.isFinite(Date.parse(s.at)));
      }
      const key = baileysDedupeKey(body);
      assert.ok(key === null || typeof key === 'string');
    }
    assert.ok(produced > 100, `the damage left too little to parse (${produced} results)`);
  });
});
