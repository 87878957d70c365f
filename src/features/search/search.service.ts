import { checkAccess, requireUser, type Principal } from '../../access/access.ts';
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts';
import { AppError } from '../../platform/errors.ts';
import { sha256Hex } from '../../platform/ids.ts';
import type { MessagesService } from '../messages/messages.service.ts';
import type { MessageDto } from '../messages/messages.schemas.ts';
import type { FtsIndexer } from './fts-indexer.ts';
import { parseSearchQuery } from './search.query.ts';
import { SNIPPET_CLOSE, SNIPPET_OPEN, type SearchAfter, type SearchFloor, type SearchHitRow, type SearchRepo } from './search.repo.ts';
import type { SearchHitDto, SearchPageDto, SearchQuery } from './search.schemas.ts';

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;
const ID_RE = /^[0-9A-Za-z-]{1,64}$/;

export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);

/**
 * The snippet as HTML: everything escaped (a message may contain HTML: SECURITY.md class D), then
 * each hit wrapped in <mark>. A body that itself contains the marker characters would make marks
 * ambiguous: such a snippet is returned without marks rather than with wrong ones.
 */
export function renderSnippet(raw: string, body: string): string {
  const escaped = escapeHtml(raw);
  if (body.includes(SNIPPET_OPEN) || body.includes(SNIPPET_CLOSE)) return escaped.replace(/[\uE000\uE001]/g, '');
  return escaped.replaceAll(SNIPPET_OPEN, '<mark>').replaceAll(SNIPPET_CLOSE, '</mark>');
}

/** Cursors are bound to the query they page through: another q with it is a 400, not a wrong page. */
const queryTag = (q: string) => sha256Hex(q).slice(0, 16);

/** The cursor: the last hit's position, the ranking window's floor ('' for none), the query's tag. */
function encodeAfter(hit: SearchHitRow, floor: SearchFloor | null, q: string): string {
  return encodeCursor({ r: String(hit.rank), t: hit.message.created_at, i: hit.message.id, ft: floor?.createdAt ?? '', fi: floor?.id ?? '', q: queryTag(q) });
}

function decodeAfter(cursor: string, q: string): SearchAfter {
  const c = decodeCursor(cursor, ['r', 't', 'i', 'ft', 'fi', 'q'] as const);
  const rank = Number(c.r);
  const floor = c.ft === '' && c.fi === '' ? null : { createdAt: c.ft, id: c.fi };
  // Every field is checked before it reaches SQL: a malformed timestamp would be a 500 on PostgreSQL.
  const valid = c.r !== '' && Number.isFinite(rank) && ISO_RE.test(c.t) && ID_RE.test(c.i) && (floor === null || (ISO_RE.test(floor.createdAt) && ID_RE.test(floor.id)));
  if (!valid || c.q !== queryTag(q)) {
    throw new AppError('validation.failed', 'Invalid cursor', { fields: [{ field: '/querystring/cursor', message: 'is not a cursor of this query' }] });
  }
  return { position: { rank, createdAt: c.t, id: c.i }, floor };
}

function toHitDto(h: SearchHitRow, message: MessageDto): SearchHitDto {
  return { message, conversation: h.conversation, snippet: renderSnippet(h.snippet, h.message.body), rank: h.rank };
}

/**
 * Search over the messages the caller may read now: those of conversations they are a member of,
 * plus every public channel of the organization when their role may browse them (customers never).
 * The permission is part of the search query itself, so a former member stops finding a private
 * channel's messages the moment they leave, and no count or page size leaks what was filtered out.
 */
export class SearchService {
  constructor(
    private readonly repo: SearchRepo,
    private readonly messages: MessagesService,
    /** SQLite: new messages wait here for the index; flushed before each search (read your writes). */
    private readonly indexer: FtsIndexer | null = null,
  ) {}

  async search(p: Principal, q: SearchQuery): Promise<SearchPageDto> {
    const userId = requireUser(p);
    const parsed = parseSearchQuery(q.q);
    const limit = q.limit ?? 20;
    const after = q.cursor === undefined ? undefined : decodeAfter(q.cursor, q.q);
    const includePublic = checkAccess(p, 'channels.browse_public');
    await this.indexer?.flush();
    const { hits, floor } = await this.repo.search({ orgId: p.orgId, userId, includePublic, ...parsed }, after, limit + 1);
    const page = hits.slice(0, limit);
    const last = page.at(-1);
    // The messages exactly as the message endpoints show them (reactions, attachments, threads).
    const dtos = await this.messages.toDtos(p, page.map((h) => h.message));
    return { data: page.map((h, i) => toHitDto(h, dtos[i]!)), next_cursor: hits.length > limit && last ? encodeAfter(last, floor, q.q) : null };
  }
}
