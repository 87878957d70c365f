import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { NeutralMessage } from '../neutral.ts';
import { parseTelegramUpdate, telegramDedupeKey } from './parse.ts';

const FIXTURES = fileURLToPath(new URL('../../../../test/fixtures/platforms/telegram/', import.meta.url));
const fixture = (name: string): unknown => {
  if (!existsSync(FIXTURES)) throw new Error(`Telegram fixtures folder missing: ${FIXTURES} (test/fixtures/platforms in the repository)`);
  return JSON.parse(readFileSync(`${FIXTURES}${name}.json`, 'utf8'));
};

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();
const CHRIS = { id: 714862471, is_bot: false, first_name: 'Chris', username: 'candyflipline' };
const PRIVATE = { id: 714862471, first_name: 'Chris', username: 'candyflipline', type: 'private' };
const GROUP = { id: -1001234567890, title: 'Support', type: 'supergroup' };

/** An update with one message in the private chat (fields override the defaults). */
const update = (message: Record<string, unknown>, key = 'message', updateId = 1000) => ({
  update_id: updateId,
  [key]: { message_id: 42, from: CHRIS, chat: PRIVATE, date: 1709659308, ...message },
});
/** The only message of an update, asserting there is exactly one and no status. */
const only = (u: unknown): NeutralMessage => {
  const { messages, statuses } = parseTelegramUpdate(u);
  assert.equal(statuses.length, 0, 'Telegram has no delivery statuses for bots');
  assert.equal(messages.length, 1, `one message expected, got ${messages.length}`);
  return messages[0]!;
};

describe('Telegram updates → neutral messages (shared fixtures)', () => {
  const expected: Record<string, (u: unknown) => void> = {
    command_start_with_entities: (u) => {
      const m = only(u);
      assert.deepEqual(m, {
        externalId: '714862471:119', isEcho: false, chatId: '714862471', isGroup: false,
        sender: { externalId: '714862471', displayName: 'Chris', username: 'candyflipline' },
        sentAt: iso(1709659308), kind: 'text', text: '/start', raw: u,
      });
      assert.equal(telegramDedupeKey(u), '633291228');
    },
    group_text: (u) => {
      const m = only(u);
      assert.deepEqual([m.externalId, m.chatId, m.isGroup, m.kind, m.text, m.sentAt], ['23:1', '23', true, 'text', 'test', iso(1631132077)]);
      assert.deepEqual(m.sender, { externalId: '23', displayName: 'Sojan Jose', username: 'sojan' });
      assert.equal(telegramDedupeKey(u), '2342342343242');
    },
    text_private_link_preview: (u) => {
      const m = only(u);
      assert.deepEqual([m.externalId, m.chatId, m.isGroup, m.kind, m.text], ['218485655:6557', '218485655', false, 'text', 'hello there']);
      assert.deepEqual(m.sender, { externalId: '218485655', displayName: 'Waffle', username: 'WaffleLapkin' });
      assert.equal(m.replyToExternalId, undefined);
      assert.equal(m.forwarded, undefined);
    },
    voice_private: (u) => {
      const m = only(u);
      assert.deepEqual([m.externalId, m.kind, m.isGroup, m.text], ['23:1', 'voice', false, undefined]);
      assert.deepEqual(m.media, {
        mime: 'audio/ogg', sizeBytes: 11833, durationSec: 2, voice: true,
        source: { kind: 'platform_id', value: 'AwACAgUAAxkBAANjYVwnWF_w8LYTchqVdK9dY7mbwYEAAskDAALCoeBWFvS2u4zS6HAhBA' },
      });
    },
  };

  it('the fixtures folder holds exactly the fixtures asserted here', () => {
    if (!existsSync(FIXTURES)) assert.fail(`Telegram fixtures folder missing: ${FIXTURES}`);
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
    assert.deepEqual(files, Object.keys(expected).sort(), 'a new fixture needs its assertions here');
  });
  for (const [name, check] of Object.entries(expected)) it(name, () => check(fixture(name)));
});

describe('Telegram message contents', () => {
  it('photo: the largest size, caption as text and media caption', () => {
    const m = only(update({ caption: 'look', photo: [
      { file_id: 'small', file_unique_id: 'a', width: 90, height: 60, file_size: 1000 },
      { file_id: 'big', file_unique_id: 'b', width: 1280, height: 853, file_size: 90000 },
      { file_id: 'mid', file_unique_id: 'c', width: 320, height: 213, file_size: 9000 },
    ] }));
    assert.equal(m.kind, 'image');
    assert.equal(m.text, 'look');
    assert.deepEqual(m.media, { sizeBytes: 90000, width: 1280, height: 853, caption: 'look', source: { kind: 'platform_id', value: 'big' } });
  });

  it('video, video note, audio, animation (which also carries a document)', () => {
    const video = only(update({ video: { file_id: 'V', file_unique_id: 'v', width: 640, height: 360, duration: 12, mime_type: 'video/mp4', file_size: 5 } }));
    assert.deepEqual([video.kind, video.media], ['video', { mime: 'video/mp4', sizeBytes: 5, durationSec: 12, width: 640, height: 360, source: { kind: 'platform_id', value: 'V' } }]);
    assert.equal(only(update({ video_note: { file_id: 'VN', file_unique_id: 'n', length: 240, duration: 3 } })).kind, 'video');
    const audio = only(update({ audio: { file_id: 'A', file_unique_id: 'a', duration: 200, performer: 'X', title: 'Song', file_name: 'song.mp3', mime_type: 'audio/mpeg' } }));
    assert.deepEqual([audio.kind, audio.media?.fileName, audio.media?.mime, audio.media?.voice], ['audio', 'song.mp3', 'audio/mpeg', undefined]);
    const gif = only(update({ animation: { file_id: 'G', file_unique_id: 'g', width: 1, height: 1, duration: 1, mime_type: 'video/mp4' }, document: { file_id: 'G', file_unique_id: 'g', mime_type: 'video/mp4' } }));
    assert.deepEqual([gif.kind, gif.media?.animated, gif.media?.source.value], ['video', true, 'G']);
  });

  it('document keeps file name and the MIME Telegram reports', () => {
    const m = only(update({ document: { file_id: 'D', file_unique_id: 'd', file_name: 'contrato.pdf', mime_type: 'application/pdf', file_size: 321 } }));
    assert.deepEqual([m.kind, m.media], ['document', { mime: 'application/pdf', sizeBytes: 321, fileName: 'contrato.pdf', source: { kind: 'platform_id', value: 'D' } }]);
  });

  it('venue and location', () => {
    const venue = only(update({ location: { latitude: -23.55, longitude: -46.63 }, venue: { location: { latitude: -23.55, longitude: -46.63 }, title: 'Loja', address: 'Av. Paulista, 1000' } }));
    assert.deepEqual([venue.kind, venue.location], ['location', { lat: -23.55, lng: -46.63, name: 'Loja', address: 'Av. Paulista, 1000' }]);
    assert.deepEqual(only(update({ location: { latitude: 1.5, longitude: 2.5, live_period: 60 } })).location, { lat: 1.5, lng: 2.5 });
  });

  it('contact', () => {
    const m = only(update({ contact: { phone_number: '+5581987885943', first_name: 'Ana', last_name: 'Lima', user_id: 77 } }));
    assert.deepEqual([m.kind, m.contacts], ['contacts', [{ name: 'Ana Lima', phones: [{ number: '+5581987885943' }] }]]);
  });

  it('reply_to_message → replyToExternalId in the same chat', () => {
    const m = only(update({ text: 'yes', reply_to_message: { message_id: 41, from: CHRIS, chat: PRIVATE, date: 1, text: 'ok?' } }));
    assert.equal(m.replyToExternalId, '714862471:41');
  });

  it('forum topics: the implicit reply to the topic-creation message is not a reply', () => {
    const root = { message_id: 7, chat: GROUP, date: 1, forum_topic_created: { name: 'Orders', icon_color: 1 } };
    const m = only(update({ chat: GROUP, text: 'hi', is_topic_message: true, message_thread_id: 7, reply_to_message: root }));
    assert.equal(m.replyToExternalId, undefined);
  });

  it('group messages: chat id, participant as sender; an anonymous admin is the sender_chat', () => {
    const m = only(update({ chat: GROUP, text: 'hello' }));
    assert.deepEqual([m.externalId, m.chatId, m.isGroup, m.sender.externalId], ['-1001234567890:42', '-1001234567890', true, '714862471']);
    const anon = only(update({ chat: GROUP, text: 'from the admins', from: { id: 1087968824, is_bot: true, first_name: 'Group', username: 'GroupAnonymousBot' }, sender_chat: GROUP }));
    assert.deepEqual(anon.sender, { externalId: '-1001234567890', displayName: 'Support' });
  });

  it('channel_post: the channel is chat and sender, no echo', () => {
    const channel = { id: -1009876543210, title: 'News', username: 'news', type: 'channel' };
    const m = only({ update_id: 5, channel_post: { message_id: 3, sender_chat: channel, chat: channel, date: 1700000000, text: 'post' } });
    assert.deepEqual([m.externalId, m.isGroup, m.isEcho, m.kind, m.text], ['-1009876543210:3', true, false, 'text', 'post']);
    assert.deepEqual(m.sender, { externalId: '-1009876543210', displayName: 'News', username: 'news' });
  });
});

describe('Telegram edits, reactions, buttons, deletions', () => {
  it('edited_message → kind edit, pointing at the original, with the new text and its own key', () => {
    const u = update({ text: 'fixed typo', edit_date: 1709659400 }, 'edited_message', 1001);
    const m = only(u);
    assert.deepEqual([m.kind, m.targetExternalId, m.text, m.externalId, m.sentAt], ['edit', '714862471:42', 'fixed typo', '714862471:42:edit:1709659400', iso(1709659400)]);
    const caption = only(update({ caption: 'new caption', edit_date: 1709659500, photo: [{ file_id: 'P', file_unique_id: 'p', width: 1, height: 1 }] }, 'edited_message'));
    assert.deepEqual([caption.kind, caption.text, caption.media?.source.value], ['edit', 'new caption', 'P']);
  });

  it('message_reaction from a user: added, changed, removed (emoji null)', () => {
    const reaction = (old_reaction: unknown[], new_reaction: unknown[]) =>
      only({ update_id: 9, message_reaction: { chat: PRIVATE, message_id: 41, user: CHRIS, date: 1709659600, old_reaction, new_reaction } });
    const added = reaction([], [{ type: 'emoji', emoji: '👍' }]);
    assert.deepEqual([added.kind, added.reaction, added.sender.externalId, added.chatId], ['reaction', { targetExternalId: '714862471:41', emoji: '👍' }, '714862471', '714862471']);
    assert.equal(added.externalId, '714862471:41:reaction:714862471:1709659600');
    assert.equal(reaction([{ type: 'emoji', emoji: '👍' }], [{ type: 'emoji', emoji: '👍' }, { type: 'emoji', emoji: '🔥' }]).reaction?.emoji, '🔥');
    assert.deepEqual(reaction([{ type: 'emoji', emoji: '👍' }], []).reaction, { targetExternalId: '714862471:41', emoji: null });
  });

  it('a custom-emoji-only reaction has no Unicode form: unsupported, not a removal', () => {
    const m = only({ update_id: 9, message_reaction: { chat: PRIVATE, message_id: 41, user: CHRIS, date: 1, old_reaction: [], new_reaction: [{ type: 'custom_emoji', custom_emoji_id: '5368324170671202286' }] } });
    assert.deepEqual([m.kind, m.reaction], ['unsupported', undefined]);
  });

  it('callback_query → interactive_reply with the button label, replying to the keyboard message', () => {
    const keyboard = { inline_keyboard: [[{ text: 'Falar com atendente', callback_data: 'agent' }, { text: 'Menu', callback_data: 'menu' }]] };
    const u = { update_id: 11, callback_query: { id: '4382bfdwdsb323b2d9', from: CHRIS, chat_instance: '-1', data: 'agent', message: { message_id: 40, from: { id: 1, is_bot: true, first_name: 'Bot' }, chat: PRIVATE, date: 1, text: 'Escolha', reply_markup: keyboard } } };
    const m = only(u);
    assert.deepEqual([m.kind, m.externalId, m.chatId, m.text, m.replyToExternalId], ['interactive_reply', 'callback:4382bfdwdsb323b2d9', '714862471', 'Falar com atendente', '714862471:40']);
    assert.deepEqual(m.interactive, { id: 'agent', title: 'Falar com atendente', payload: 'agent' });
    assert.ok(!Number.isNaN(Date.parse(m.sentAt)), 'callback queries carry no date: the parse time');
  });

  it('deleted_business_messages → one delete per message id', () => {
    const { messages } = parseTelegramUpdate({ update_id: 12, deleted_business_messages: { business_connection_id: 'bc', chat: PRIVATE, message_ids: [5, 6] } });
    assert.deepEqual(messages.map((m) => [m.kind, m.targetExternalId, m.externalId]), [['delete', '714862471:5', '714862471:5:delete'], ['delete', '714862471:6', '714862471:6:delete']]);
  });

  it('my_chat_member (bot blocked by the user) → system', () => {
    const m = only({ update_id: 13, my_chat_member: { chat: PRIVATE, from: CHRIS, date: 1709660000, old_chat_member: { status: 'member' }, new_chat_member: { status: 'kicked' } } });
    assert.deepEqual([m.kind, m.externalId, m.chatId, m.sentAt], ['system', 'update:13', '714862471', iso(1709660000)]);
  });
});

describe('Telegram quirks (CONNECTORS.md §10)', () => {
  it('unknown update keys → unsupported keyed by update_id, whole update as raw', () => {
    const u = { update_id: 77, some_future_update: { chat: PRIVATE, from: CHRIS, date: 1709659308, stuff: true } };
    const m = only(u);
    assert.deepEqual(m, {
      externalId: 'update:77', isEcho: false, chatId: '714862471', isGroup: false,
      sender: { externalId: '714862471', displayName: 'Chris', username: 'candyflipline' },
      sentAt: iso(1709659308), kind: 'unsupported', raw: u,
    });
    const bare = only({ update_id: 78, poll: { id: 'p', question: 'q', options: [] } });
    assert.deepEqual([bare.kind, bare.chatId, bare.externalId], ['unsupported', '', 'update:78']);
  });

  it('dice and story → unsupported with the message keys; service messages → system', () => {
    const dice = only(update({ dice: { emoji: '🎲', value: 4 } }));
    assert.deepEqual([dice.kind, dice.externalId, dice.chatId, dice.text], ['unsupported', '714862471:42', '714862471', undefined]);
    assert.deepEqual((dice.raw as { message: { dice: unknown } }).message.dice, { emoji: '🎲', value: 4 });
    assert.equal(only(update({ story: { chat: PRIVATE, id: 3 } })).kind, 'unsupported');
    assert.equal(only(update({ chat: GROUP, new_chat_members: [CHRIS] })).kind, 'system');
    assert.equal(only(update({ chat: GROUP, pinned_message: { message_id: 1, chat: GROUP, date: 1, text: 'x' } })).kind, 'system');
  });

  it('albums arrive as separate updates: one message each, own keys', () => {
    const part = (id: number, file: string) => update({ message_id: id, media_group_id: '13579', photo: [{ file_id: file, file_unique_id: file, width: 10, height: 10 }] }, 'message', 2000 + id);
    const [a, b] = [only(part(50, 'F1')), only(part(51, 'F2'))];
    assert.deepEqual([a.externalId, a.kind, a.media?.source.value], ['714862471:50', 'image', 'F1']);
    assert.deepEqual([b.externalId, b.kind, b.media?.source.value], ['714862471:51', 'image', 'F2']);
    assert.notEqual(telegramDedupeKey(part(50, 'F1')), telegramDedupeKey(part(51, 'F2')));
  });

  it('is_animated: 1 (test data) is coerced to a boolean', () => {
    const m = only(update({ sticker: { file_id: 'S', file_unique_id: 's', type: 'regular', width: 512, height: 512, is_animated: 1, is_video: 0, emoji: '😀' } }));
    assert.equal(m.kind, 'sticker');
    assert.equal(m.media?.animated, true);
    assert.equal(m.media?.mime, 'application/x-tgsticker');
    const still = only(update({ sticker: { file_id: 'S2', file_unique_id: 's2', width: 512, height: 512, is_animated: 0, is_video: false } }));
    assert.deepEqual([still.media?.animated, still.media?.mime], [false, 'image/webp']);
  });

  it('wrong document MIME: kept as Telegram says, still a document (storage sniffs the bytes)', () => {
    const m = only(update({ document: { file_id: 'PNG', file_unique_id: 'p', file_name: 'screenshot.png', mime_type: 'application/octet-stream', file_size: 2048 } }));
    assert.deepEqual([m.kind, m.media?.mime, m.media?.fileName], ['document', 'application/octet-stream', 'screenshot.png']);
  });

  it('forward_origin (Bot API 7+) and the legacy forward_from both mark forwarded', () => {
    const origin = only(update({ text: 'fwd', forward_origin: { type: 'user', sender_user: { id: 5, is_bot: false, first_name: 'Z' }, date: 1 } }));
    const legacy = only(update({ text: 'fwd', forward_from: { id: 5, is_bot: false, first_name: 'Z' }, forward_date: 1 }));
    const hidden = only(update({ text: 'fwd', forward_sender_name: 'Someone', forward_date: 1 }));
    assert.deepEqual([origin.forwarded, legacy.forwarded, hidden.forwarded], [true, true, true]);
    assert.equal(only(update({ text: 'own words' })).forwarded, undefined);
  });

  it('actor_chat reactions (anonymous admin or channel, no user): the chat is the sender', () => {
    const m = only({ update_id: 90, message_reaction: { chat: GROUP, message_id: 10, actor_chat: GROUP, date: 1709659700, old_reaction: [], new_reaction: [{ type: 'emoji', emoji: '❤' }] } });
    assert.deepEqual([m.kind, m.isGroup, m.sender, m.reaction], ['reaction', true, { externalId: '-1001234567890', displayName: 'Support' }, { targetExternalId: '-1001234567890:10', emoji: '❤' }]);
    const removed = only({ update_id: 91, message_reaction: { chat: GROUP, message_id: 10, actor_chat: GROUP, date: 1709659800, old_reaction: [{ type: 'emoji', emoji: '❤' }], new_reaction: [] } });
    assert.equal(removed.reaction?.emoji, null);
  });
});

describe('Telegram malformed input never throws', () => {
  it('non-updates → empty', () => {
    for (const body of [null, undefined, 'update', 42, true, [], [{ update_id: 1 }], {}, { update_id: 5 }, { message: { chat: { id: 1 } } }]) {
      assert.deepEqual(parseTelegramUpdate(body), { messages: [], statuses: [] }, JSON.stringify(body));
      assert.equal(typeof telegramDedupeKey(body) === 'string', body !== null && typeof body === 'object' && 'update_id' in body);
    }
  });

  it('broken messages with an update_id → unsupported keyed by update_id', () => {
    for (const message of [{}, 'text', [], null, { chat: {}, message_id: 1 }, { chat: { id: 1 } }, { chat: 'x', message_id: 'y' }]) {
      const m = only({ update_id: 6, message });
      assert.deepEqual([m.kind, m.externalId], ['unsupported', 'update:6'], JSON.stringify(message));
    }
    const noFile = only(update({ photo: [{ width: 1 }], voice: 'x' }));
    assert.deepEqual([noFile.kind, noFile.media], ['unsupported', undefined]);
    assert.equal(only(update({ location: { latitude: 'x' } })).kind, 'unsupported');
    assert.equal(only({ update_id: 7, message_reaction: { chat: PRIVATE, message_id: 1, new_reaction: 'x', old_reaction: 5 } }).reaction?.emoji, null);
  });

  it('every field of every fixture replaced by odd values: no throw', () => {
    const odd = [null, 'x', 0, -1.5, [], {}, [null], true];
    const paths = (v: unknown, prefix: string[] = []): string[][] =>
      v !== null && typeof v === 'object' ? Object.entries(v).flatMap(([k, c]) => [[...prefix, k], ...paths(c, [...prefix, k])]) : [];
    for (const name of readdirSync(FIXTURES).filter((f) => f.endsWith('.json'))) {
      const base = fixture(name.slice(0, -5));
      for (const path of paths(base)) {
        for (const value of odd) {
          const copy = structuredClone(base) as Record<string, unknown>;
          let node: Record<string, unknown> = copy;
          for (const k of path.slice(0, -1)) node = node[k] as Record<string, unknown>;
          node[path.at(-1)!] = value;
          const out = parseTelegramUpdate(copy);
          assert.ok(Array.isArray(out.messages) && out.statuses.length === 0, `${name} ${path.join('.')}`);
        }
      }
    }
  });
});
