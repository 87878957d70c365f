/** What a message body mentions: @username, and the broadcasts @channel / @all and @here. */
export interface ParsedMentions {
  usernames: string[];
  channel: boolean;
  here: boolean;
}

// An @ at the start or after a character that cannot be part of an address or a word (so
// "mail@example.com" is not a mention), then a username as Parley allows them.
const MENTION_RE = /(?:^|[^\p{L}\p{N}_.@-])@([A-Za-z0-9._-]{1,64})/gu;

export function parseMentions(body: string): ParsedMentions {
  const usernames = new Set<string>();
  let channel = false;
  let here = false;
  for (const m of body.matchAll(MENTION_RE)) {
    const name = m[1]!.replace(/[._-]+$/, '').toLowerCase();
    if (name === 'channel' || name === 'all') channel = true;
    else if (name === 'here') here = true;
    else if (name) usernames.add(name);
  }
  return { usernames: [...usernames], channel, here };
}

/**
 * Who is notified: named members, every member for @channel, members not offline for @here —
 * never the author, never someone outside the conversation.
 */
export function mentionedUserIds(parsed: ParsedMentions, members: Array<{ userId: string; username: string; status: string }>, authorId: string): string[] {
  const ids = new Set<string>();
  for (const m of members) {
    if (m.userId === authorId) continue;
    if (parsed.channel || (parsed.here && m.status !== 'offline') || parsed.usernames.includes(m.username)) ids.add(m.userId);
  }
  return [...ids];
}
