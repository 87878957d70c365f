import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { NeutralMessage, ParsedDelivery } from '../neutral.ts';
import { parseMetaWebhook } from './parse.ts';

type Platform = 'instagram' | 'messenger';
const folder = (platform: Platform) => fileURLToPath(new URL(`../../../../test/fixtures/platforms/${platform}/`, import.meta.url));
const fixture = (platform: Platform, name: string): unknown => {
  const dir = folder(platform);
  if (!existsSync(dir)) throw new Error(`${platform} fixtures folder missing: ${dir} (test/fixtures/platforms in the repository)`);
  return JSON.parse(readFileSync(`${dir}${name}.json`, 'utf8'));
};

const IG = '17841400000000001'; // the business's Instagram account
const USER = '1234567890123456'; // an IGSID
const T = 1747740100000;
/** An Instagram delivery with these messaging events in one entry. */
const ig = (...events: Array<Record<string, unknown>>) => ({ object: 'instagram', entry: [{ id: IG, time: T, messaging: events }] });
/** A customer → business event. */
const inbound = (fields: Record<string, unknown>) => ({ sender: { id: USER }, recipient: { id: IG }, timestamp: T, ...fields });
const only = (d: ParsedDelivery): NeutralMessage => {
  assert.equal(d.statuses.length, 0);
  assert.equal(d.messages.length, 1, `one message expected, got ${d.messages.length}`);
  return d.messages[0]!;
};
const EMPTY: ParsedDelivery = { messages: [], statuses: [] };

describe('Meta webhooks → neutral (shared fixtures)', () => {
  const expected: Record<Platform, Record<string, (body: unknown) => void>> = {
    instagram: {
      CONSTRUCTED_echo_text_from_business: (body) => {
        const m = only(parseMetaWebhook(body, 'instagram'));
        const ev = (body as { entry: Array<{ messaging: unknown[] }> }).entry[0]!.messaging[0];
        assert.deepEqual(m, {
          externalId: 'aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwMDAwMDAwMDAxOjM0MDI4MjM2NjgwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAy',
          isEcho: true, chatId: '1234567890123456', isGroup: false, sender: { externalId: '17841400000000001' },
          sentAt: new Date(1747740100000).toISOString(), kind: 'text', text: 'Obrigado! Já verifico.', raw: ev,
        });
      },
      cwfactory_messaging_seen: (body) => {
        assert.deepEqual(parseMetaWebhook(body, 'instagram'), {
          messages: [],
          statuses: [{ externalId: 'message-id-1', status: 'read', at: '2021-09-08T06:34:04.000Z', recipientId: 'Sender-id-1', andEarlier: true }],
        });
      },
      cwfactory_text: (body) => {
        const m = only(parseMetaWebhook(body, 'instagram'));
        assert.deepEqual([m.externalId, m.isEcho, m.chatId, m.isGroup, m.sender, m.kind, m.text, m.sentAt], [
          'message-id-1', false, 'Sender-id-1', false, { externalId: 'Sender-id-1' }, 'text', 'This is the first message from the customer', '2021-09-08T06:34:04.000Z',
        ]);
      },
    },
    messenger: {
      CONSTRUCTED_delivery: (body) => {
        assert.deepEqual(parseMetaWebhook(body, 'messenger'), {
          messages: [],
          statuses: [
            { externalId: 'm_EchoMsg000001', status: 'delivered', at: new Date(1747741000000).toISOString(), recipientId: '6300000000000001' },
            { externalId: '*', status: 'delivered', at: new Date(1747741150000).toISOString(), recipientId: '6300000000000001' },
          ],
        });
      },
      CONSTRUCTED_text_with_quick_reply: (body) => {
        const m = only(parseMetaWebhook(body, 'messenger'));
        assert.deepEqual([m.externalId, m.isEcho, m.chatId, m.sender.externalId, m.kind, m.text, m.sentAt], [
          'm_AbCdEf0123456789', false, '6300000000000001', '6300000000000001', 'interactive_reply', 'Quero falar com atendente', new Date(1747741000000).toISOString(),
        ]);
        assert.deepEqual(m.interactive, { id: 'TALK_TO_AGENT', title: 'Quero falar com atendente', payload: 'TALK_TO_AGENT' });
      },
    },
  };

  for (const platform of ['instagram', 'messenger'] as const) {
    it(`${platform}: the fixtures folder holds exactly the fixtures asserted here`, () => {
      const dir = folder(platform);
      if (!existsSync(dir)) assert.fail(`${platform} fixtures folder missing: ${dir}`);
      const files = readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
      assert.deepEqual(files, Object.keys(expected[platform]).sort(), 'a new fixture needs its assertions here');
    });
    for (const [name, check] of Object.entries(expected[platform])) it(`${platform}/${name}`, () => check(fixture(platform, name)));
  }

  it('a delivery for the other product is not parsed', () => {
    assert.deepEqual(parseMetaWebhook(fixture('instagram', 'cwfactory_text'), 'messenger'), EMPTY);
    assert.deepEqual(parseMetaWebhook(fixture('messenger', 'CONSTRUCTED_delivery'), 'instagram'), EMPTY);
  });
});

describe('Meta message contents', () => {
  it('attachments: image, video, voice clip, file, Messenger location and sticker', () => {
    const url = (n: string) => `https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=${n}&signature=abc`;
    const d = parseMetaWebhook(ig(inbound({ message: { mid: 'M1', attachments: [
      { type: 'image', payload: { url: url('1') } },
      { type: 'video', payload: { url: url('2') } },
      { type: 'audio', payload: { url: url('3') } },
      { type: 'file', payload: { url: url('4') } },
    ] } })), 'instagram');
    assert.deepEqual(d.messages.map((m) => [m.externalId, m.kind, m.media]), [
      ['M1', 'image', { source: { kind: 'url', value: url('1') } }],
      ['M1:1', 'video', { source: { kind: 'url', value: url('2') } }],
      ['M1:2', 'voice', { voice: true, source: { kind: 'url', value: url('3') } }],
      ['M1:3', 'document', { source: { kind: 'url', value: url('4') } }],
    ]);
    const page = (message: Record<string, unknown>) => ({ object: 'page', entry: [{ id: 'PAGE', time: T, messaging: [{ sender: { id: 'PSID' }, recipient: { id: 'PAGE' }, timestamp: T, message }] }] });
    const loc = only(parseMetaWebhook(page({ mid: 'L', attachments: [{ type: 'location', title: 'Pin', url: 'https://maps', payload: { coordinates: { lat: -8.05, long: -34.9 } } }] }), 'messenger'));
    assert.deepEqual([loc.kind, loc.location], ['location', { lat: -8.05, lng: -34.9, name: 'Pin', url: 'https://maps' }]);
    const sticker = only(parseMetaWebhook(page({ mid: 'S', sticker_id: 369239263222822, attachments: [{ type: 'image', payload: { url: 'https://x/like.png', sticker_id: 369239263222822 } }] }), 'messenger'));
    assert.equal(sticker.kind, 'sticker');
  });

  it('text with an attachment: the text goes on the first message', () => {
    const d = parseMetaWebhook(ig(inbound({ message: { mid: 'M2', text: 'see this', attachments: [{ type: 'image', payload: { url: 'https://cdn/a' } }] } })), 'instagram');
    const m = only(d);
    assert.deepEqual([m.kind, m.text, m.media?.caption], ['image', 'see this', 'see this']);
  });

  it('reply_to.mid → replyToExternalId; a reply to a story has no mid to point at', () => {
    assert.equal(only(parseMetaWebhook(ig(inbound({ message: { mid: 'M3', text: 'yes', reply_to: { mid: 'M0' } } })), 'instagram')).replyToExternalId, 'M0');
    const story = only(parseMetaWebhook(ig(inbound({ message: { mid: 'M4', text: 'nice', reply_to: { story: { id: '179', url: 'https://cdn/s' } } } })), 'instagram'));
    assert.deepEqual([story.kind, story.replyToExternalId], ['text', undefined]);
  });

  it('reactions: react with emoji, Messenger reaction name, unreact without emoji → null', () => {
    const react = only(parseMetaWebhook(ig(inbound({ reaction: { mid: 'M0', action: 'react', reaction: 'love', emoji: '❤️' } })), 'instagram'));
    assert.deepEqual([react.kind, react.reaction, react.externalId, react.chatId, react.isEcho], ['reaction', { targetExternalId: 'M0', emoji: '❤️' }, `M0:react:${T}`, USER, false]);
    assert.equal(only(parseMetaWebhook(ig(inbound({ reaction: { mid: 'M0', action: 'react', reaction: 'wow' } })), 'instagram')).reaction?.emoji, '😮');
    const unreact = only(parseMetaWebhook(ig(inbound({ reaction: { mid: 'M0', action: 'unreact' } })), 'instagram'));
    assert.deepEqual([unreact.reaction, unreact.externalId], [{ targetExternalId: 'M0', emoji: null }, `M0:unreact:${T}`]);
    const mine = only(parseMetaWebhook(ig({ sender: { id: IG }, recipient: { id: USER }, timestamp: T, reaction: { mid: 'M9', action: 'react', emoji: '👍' } }), 'instagram'));
    assert.deepEqual([mine.isEcho, mine.chatId], [true, USER], 'the business reacting from its app');
  });

  it('postback → interactive_reply; Messenger message_edit → edit', () => {
    const pb = only(parseMetaWebhook(ig(inbound({ postback: { mid: 'P1', title: 'Ver pedidos', payload: 'ORDERS' } })), 'instagram'));
    assert.deepEqual([pb.kind, pb.externalId, pb.text, pb.interactive], ['interactive_reply', 'P1', 'Ver pedidos', { id: 'ORDERS', title: 'Ver pedidos', payload: 'ORDERS' }]);
    const body = { object: 'page', entry: [{ id: 'PAGE', time: T, messaging: [{ sender: { id: 'PSID' }, recipient: { id: 'PAGE' }, timestamp: T, message_edit: { mid: 'm_1', text: 'corrigido', num_edit: 2 } }] }] };
    const edit = only(parseMetaWebhook(body, 'messenger'));
    assert.deepEqual([edit.kind, edit.targetExternalId, edit.text, edit.externalId, edit.chatId], ['edit', 'm_1', 'corrigido', 'm_1:edit:2', 'PSID']);
  });

  it('Messenger read watermark → a "*" status at the watermark for that person', () => {
    const body = { object: 'page', entry: [{ id: 'PAGE', time: T, messaging: [{ sender: { id: 'PSID' }, recipient: { id: 'PAGE' }, timestamp: T, read: { watermark: 1747740000000 } }] }] };
    assert.deepEqual(parseMetaWebhook(body, 'messenger'), { messages: [], statuses: [{ externalId: '*', status: 'read', at: new Date(1747740000000).toISOString(), recipientId: 'PSID' }] });
  });

  it('batched envelopes: every entry and every event', () => {
    const body = { object: 'instagram', entry: [
      { id: IG, time: T, messaging: [inbound({ message: { mid: 'A', text: '1' } }), inbound({ message: { mid: 'B', text: '2' } })] },
      { id: IG, time: T, messaging: [inbound({ read: { mid: 'OUT1' } }), inbound({ message: { mid: 'C', text: '3' } })] },
    ] };
    const d = parseMetaWebhook(body, 'instagram');
    assert.deepEqual(d.messages.map((m) => m.externalId), ['A', 'B', 'C']);
    assert.deepEqual(d.statuses.map((s) => s.externalId), ['OUT1']);
  });

  it('referral → system; unknown events, is_unsupported and unknown attachment types → unsupported with raw', () => {
    const ref = only(parseMetaWebhook(ig(inbound({ referral: { source: 'ADS', type: 'OPEN_THREAD', ad_id: '1' } })), 'instagram'));
    assert.deepEqual([ref.kind, ref.externalId], ['system', `referral:${USER}:${T}`]);
    const future = inbound({ brand_new_event: { x: 1 } });
    const unknown = only(parseMetaWebhook(ig(future), 'instagram'));
    assert.deepEqual([unknown.kind, unknown.externalId, unknown.chatId, unknown.raw], ['unsupported', `event:${USER}:${T}`, USER, future]);
    assert.equal(only(parseMetaWebhook(ig(inbound({ message: { mid: 'U', is_unsupported: true } })), 'instagram')).kind, 'unsupported');
    const tpl = only(parseMetaWebhook(ig(inbound({ message: { mid: 'V', attachments: [{ type: 'template', payload: { template_type: 'generic' } }] } })), 'instagram'));
    assert.deepEqual([tpl.kind, tpl.externalId], ['unsupported', 'V']);
  });
});

describe('Instagram quirks (CONNECTORS.md §10)', () => {
  it('standby[] instead of messaging[] (another app owns the thread)', () => {
    const body = { object: 'instagram', entry: [{ id: IG, time: T, standby: [inbound({ message: { mid: 'SB', text: 'still here' } })] }] };
    const m = only(parseMetaWebhook(body, 'instagram'));
    assert.deepEqual([m.externalId, m.kind, m.text, m.chatId], ['SB', 'text', 'still here', USER]);
  });

  it('the dashboard test event (entry.id "0", changes[], timestamp a string of seconds) parses', () => {
    const body = { object: 'instagram', entry: [{ id: '0', time: 1604004245, changes: [{ field: 'messages', value: {
      sender: { id: '12334' }, recipient: { id: '23245' }, timestamp: '1527459824', message: { mid: 'random_mid', text: 'random_text' } } }] }] };
    const m = only(parseMetaWebhook(body, 'instagram'));
    assert.deepEqual([m.externalId, m.kind, m.text, m.chatId, m.isEcho, m.sentAt], ['random_mid', 'text', 'random_text', '12334', false, new Date(1527459824 * 1000).toISOString()]);
  });

  it('story_mention with is_echo: the business mentioned the person, an echo in their conversation', () => {
    const url = 'https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=story&signature=x';
    const body = ig({ sender: { id: IG }, recipient: { id: USER }, timestamp: T, message: { mid: 'SM', is_echo: true, attachments: [{ type: 'story_mention', payload: { url } }] } });
    const m = only(parseMetaWebhook(body, 'instagram'));
    assert.deepEqual([m.isEcho, m.chatId, m.sender.externalId, m.kind, m.media?.source], [true, USER, IG, 'image', { kind: 'url', value: url }]);
    const inboundMention = only(parseMetaWebhook(ig(inbound({ message: { mid: 'SM2', attachments: [{ type: 'story_mention', payload: { url } }] } })), 'instagram'));
    assert.deepEqual([inboundMention.isEcho, inboundMention.chatId, inboundMention.kind], [false, USER, 'image']);
  });

  it('is_deleted → kind delete of that mid, with its own key', () => {
    const m = only(parseMetaWebhook(ig(inbound({ message: { mid: 'GONE', is_deleted: true } })), 'instagram'));
    assert.deepEqual([m.kind, m.targetExternalId, m.externalId, m.chatId], ['delete', 'GONE', 'GONE:delete', USER]);
  });

  it('expiring CDN URLs are passed on verbatim as url sources (the caller downloads them at once)', () => {
    const url = 'https://scontent.cdninstagram.com/v/t51.2885-15/abc.jpg?stp=dst-jpg&_nc_ht=x&oh=00_AfB&oe=67A1B2C3';
    const m = only(parseMetaWebhook(ig(inbound({ message: { mid: 'IMG', attachments: [{ type: 'image', payload: { url } }] } })), 'instagram'));
    assert.deepEqual(m.media, { source: { kind: 'url', value: url } });
  });

  it('share plus ig_post double attachment → one message, from ig_post', () => {
    const body = ig(inbound({ message: { mid: 'POST', attachments: [
      { type: 'share', payload: { url: 'https://lookaside.fbsbx.com/share.jpg' } },
      { type: 'ig_post', payload: { ig_post_media_id: '18000000000000001', title: 'Nova coleção', url: 'https://lookaside.fbsbx.com/post.jpg' } },
    ] } }));
    const m = only(parseMetaWebhook(body, 'instagram'));
    assert.deepEqual([m.externalId, m.kind, m.text, m.media], ['POST', 'image', 'Nova coleção', { caption: 'Nova coleção', source: { kind: 'url', value: 'https://lookaside.fbsbx.com/post.jpg' } }]);
    const oldShare = only(parseMetaWebhook(ig(inbound({ message: { mid: 'OLD', attachments: [{ type: 'share', payload: { url: 'https://x/s.jpg' } }] } })), 'instagram'));
    assert.deepEqual([oldShare.kind, oldShare.media?.source.value], ['image', 'https://x/s.jpg']);
  });
});

describe('Meta malformed input never throws', () => {
  it('non-deliveries → empty', () => {
    for (const body of [null, undefined, 'x', 7, [], [{ object: 'instagram' }], {}, { object: 'instagram' }, { object: 'instagram', entry: 'x' },
      { object: 'instagram', entry: [null, 'x', 3, [], { messaging: 'x' }, { messaging: [null, 'x', {}, { sender: 'x' }, { sender: {} }] }, { changes: [null, { value: 'x' }, { field: 'comments', value: { from: { id: '1' }, text: 'hi' } }] }] }]) {
      assert.deepEqual(parseMetaWebhook(body, 'instagram'), EMPTY, JSON.stringify(body));
    }
  });

  it('events with broken parts → unsupported or skipped, never thrown', () => {
    const weird = [{ message: null }, { message: 'x' }, { message: {} }, { message: { mid: 5 } }, { message: { mid: 'Z', attachments: 'x' } },
      { message: { mid: 'Z', attachments: [null, 'x', { type: 'image' }, { type: 'location', payload: { coordinates: 'x' } }] } },
      { reaction: null }, { reaction: { action: 'react' } }, { postback: 'x' }, { message_edit: {} }, { read: 'x' }, { delivery: { mids: 'x', watermark: 'soon' } }];
    for (const fields of weird) {
      const d = parseMetaWebhook(ig(inbound({ ...fields, timestamp: 'garbage' })), 'instagram');
      for (const m of d.messages) assert.ok(m.externalId && !Number.isNaN(Date.parse(m.sentAt)), JSON.stringify(fields));
      for (const s of d.statuses) assert.ok(!Number.isNaN(Date.parse(s.at)), JSON.stringify(fields));
    }
    const noMid = only(parseMetaWebhook(ig(inbound({ message: { text: 'no id' } })), 'instagram'));
    assert.deepEqual([noMid.kind, noMid.externalId], ['unsupported', `message:${USER}:${T}`]);
    assert.deepEqual(parseMetaWebhook(ig(inbound({ message: { mid: 'Z', attachments: [null, { type: 'image' }] } })), 'instagram').messages.map((m) => m.kind), ['unsupported', 'unsupported']);
  });
});
