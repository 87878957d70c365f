import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { chatKey } from './chat-key.ts';
import { inboundConnector } from './registry.ts';

const fixture = (path: string): unknown => JSON.parse(readFileSync(new URL(`../../../test/fixtures/platforms/${path}.json`, import.meta.url), 'utf8'));

describe('chat keys (the order deliveries of one chat are processed in)', () => {
  it('is the chat the parser finds, for every platform’s samples', () => {
    const cases: Array<[string, string]> = [
      ['whatsapp', 'whatsapp/image'],
      ['whatsapp', 'whatsapp/reply_text'],
      ['telegram', 'telegram/group_text'],
      ['telegram', 'telegram/voice_private'],
      ['codechat', 'codechat/CONSTRUCTED_v1_messages_upsert_audio_ptt'],
      ['evolution', 'evolution/CONSTRUCTED_messages_upsert_audio_ptt_with_base64'],
    ];
    for (const [platform, path] of cases) {
      const body = fixture(path);
      const parsed = inboundConnector(platform)!.parse(body);
      const m = parsed.messages[0]!;
      const key = chatKey(platform, body);
      assert.ok(key, `${path}: a key`);
      // The chat the parser names (it normalizes JIDs: compared without the domain).
      assert.equal(key.replace(/@.*$/, ''), m.chatId.replace(/@.*$/, ''), path);
    }
  });

  it('a WhatsApp status goes with its chat’s messages', () => {
    const status = fixture('whatsapp/status_read');
    const recipient = inboundConnector('whatsapp')!.parse(status).statuses[0]!.recipientId;
    assert.equal(chatKey('whatsapp', status), recipient);
  });

  it('Instagram / Messenger: the customer’s message and the page’s echo to them share one key', () => {
    const fromCustomer = { object: 'instagram', entry: [{ id: 'PAGE', messaging: [{ sender: { id: 'IGSID1' }, recipient: { id: 'PAGE' }, message: { mid: 'm1', text: 'oi' } }] }] };
    const echo = { object: 'instagram', entry: [{ id: 'PAGE', messaging: [{ sender: { id: 'PAGE' }, recipient: { id: 'IGSID1' }, message: { mid: 'm2', text: 'olá', is_echo: true } }] }] };
    assert.equal(chatKey('instagram', fromCustomer), chatKey('instagram', echo));
    assert.notEqual(chatKey('instagram', fromCustomer), chatKey('instagram', { entry: [{ messaging: [{ sender: { id: 'IGSID2' }, recipient: { id: 'PAGE' } }] }] }));
  });

  it('is empty, never an error, for shapes it does not know', () => {
    for (const platform of ['whatsapp', 'telegram', 'instagram', 'codechat', 'evolution', 'api']) {
      for (const body of [null, 42, 'x', [], {}, { entry: 'nope' }, { data: [1] }]) assert.equal(chatKey(platform, body), '');
    }
  });
});
