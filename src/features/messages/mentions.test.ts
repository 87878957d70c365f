import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mentionedUserIds, parseMentions } from './mentions.ts';

describe('mentions', () => {
  it('finds usernames and broadcasts, not e-mail addresses', () => {
    assert.deepEqual(parseMentions('hi @Alice and @bob.smith, cc @channel — mail me at x@example.com'), { usernames: ['alice', 'bob.smith'], channel: true, here: false });
    assert.deepEqual(parseMentions('@here: @carol.'), { usernames: ['carol'], channel: false, here: true });
    assert.deepEqual(parseMentions('@all'), { usernames: [], channel: true, here: false });
    assert.deepEqual(parseMentions('no mentions @ all'), { usernames: [], channel: false, here: false });
  });

  it('resolves to members only, never the author; @here only reaches members not offline', () => {
    const members = [
      { userId: 'a', username: 'alice', status: 'online' },
      { userId: 'b', username: 'bob', status: 'offline' },
      { userId: 'c', username: 'carol', status: 'away' },
    ];
    assert.deepEqual(mentionedUserIds(parseMentions('@bob @mallory'), members, 'a'), ['b']);
    assert.deepEqual(mentionedUserIds(parseMentions('@here'), members, 'a'), ['c']);
    assert.deepEqual(mentionedUserIds(parseMentions('@channel'), members, 'a').sort(), ['b', 'c']);
    assert.deepEqual(mentionedUserIds(parseMentions('@alice'), members, 'a'), []);
  });
});
