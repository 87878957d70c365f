import { sql, type Kysely, type RawBuilder, type Selectable } from 'kysely';
import { dialectOf, type DialectName } from '../../storage/dialect.ts';
import type { DB, MessagesTable } from '../../storage/schema.ts';
import type { ParsedSearch } from './search.query.ts';

/**
 * Full-text search over messages: SQLite FTS5 or PostgreSQL tsvector, behind one method. The index
 * itself is made and kept up to date by migration 0005-search (triggers / a generated column).
 *
 * NOTE: every value below — search terms, filter values, cursor — is bound as a parameter. The FTS5
 * MATCH expression is built from the terms, but each term is a double-quoted FTS5 string (quotes
 * doubled), so no FTS5 operator (OR, NOT, NEAR, *, ^, column filters) can come from the user; on
 * PostgreSQL plainto_tsquery / phraseto_tsquery take plain text and never fail on syntax.
 */

export type MessageRow = Selectable<MessagesTable>;

/** Private-use characters around each hit in a raw snippet; the service turns them into <mark>. */
export const SNIPPET_OPEN = '\uE000';
export const SNIPPET_CLOSE = '\uE001';
const ELLIPSIS = '…';
/** ts_headline: up to two fragments of about 10 to 24 words around the hits. */
const HEADLINE_OPTIONS = `StartSel=${SNIPPET_OPEN}, StopSel=${SNIPPET_CLOSE}, MaxWords=24, MinWords=10, ShortWord=0, MaxFragments=2, FragmentDelimiter=" ${ELLIPSIS} "`;

/** What to search (the parsed query) and for whom. */
export interface SearchSpec extends ParsedSearch {
  orgId: string;
  /** The caller: conversations they are a member of are searched. */
  userId: string;
  /** Also search every public channel of the organization (the caller may browse them). */
  includePublic: boolean;
}

/** The position after the last hit of a page, in the result order (rank, created_at, id) descending. */
export interface SearchPosition {
  rank: number;
  createdAt: string;
  id: string;
}

/**
 * The oldest message of a full ranking window (see RANK_WINDOW): later pages rank the messages from
 * it on, so the candidates of a search stay the same from page to page.
 */
export interface SearchFloor {
  createdAt: string;
  id: string;
}

/** Where a page starts: after `position`, among the candidates from `floor` on (all when null). */
export interface SearchAfter {
  position: SearchPosition;
  floor: SearchFloor | null;
}

export interface SearchHitRow {
  message: MessageRow;
  conversation: { id: string; kind: string; name: string | null };
  /** Higher is better: -bm25 of the body on SQLite, ts_rank_cd on PostgreSQL (comparable within one engine only). */
  rank: number;
  /** The body around the hits, not escaped, hits between SNIPPET_OPEN and SNIPPET_CLOSE. */
  snippet: string;
}

export interface SearchResult {
  hits: SearchHitRow[];
  /** The floor the next pages must keep: set when a first page filled its window, else as given. */
  floor: SearchFloor | null;
}

/**
 * How many of the newest matching messages a search ranks. A word in a third of a million
 * messages would otherwise cost a rank computation for each; chat search favours recent messages
 * anyway. Searches with fewer hits (nearly all) rank every hit; filters narrow the rest.
 */
export const RANK_WINDOW = 500;

type WindowRow = { id: string; rank: number; window_count: number; floor_id: string | null; floor_created_at: string | null };
type SqliteWindowRow = WindowRow & { rid: number };
type PageRow = MessageRow & { search_snippet: string; conv_kind: string; conv_name: string | null };

/**
 * At most this many conversations are named inside the FTS5 query (in:, or a customer's own); with
 * more, the OR of them costs more than filtering the hits.
 */
const NARROW_MAX = 50;

/** FTS5, body column only: each term a quoted string ("" escapes a quote), all must match. */
export function fts5Match(words: string[], phrases: string[]): string {
  return `body : (${[...words, ...phrases].map((t) => `"${t.replaceAll('"', '""')}"`).join(' ')})`;
}

/**
 * The conversations to narrow the index search to, as `select ... as id`: those of `in:` or, for a
 * caller who cannot browse public channels, their own. Narrowing is built in SQL from conversation
 * ids (never from input) and is only a shortcut: conditions() still checks every row.
 */
function narrowTo(s: SearchSpec): RawBuilder<unknown> | undefined {
  if (s.in.length) return sql`select ic.id as id from conversations ic where ic.org_id = ${s.orgId} and (ic.id in (${sql.join(s.in)}) or ic.name in (${sql.join(s.in)}))`;
  if (!s.includePublic) return sql`select cm.conversation_id as id from conversation_members cm where cm.user_id = ${s.userId} and cm.org_id = ${s.orgId}`;
  return undefined;
}

/** The FTS5 query, narrowed to the conversations of narrowTo() when they are few. */
function fts5Query(s: SearchSpec, body: string): RawBuilder<unknown> | string {
  const source = narrowTo(s);
  if (!source) return body;
  // A UUID's last group (48 random bits) is one token: far cheaper to match than the 5-token
  // phrase of the whole id, and a clash would only cost time, never a row (see above).
  const idToken = sql`(case when length(x.id) = 36 and substr(x.id, 24, 1) = '-' then substr(x.id, 25) else replace(x.id, '"', '""') end)`;
  return sql`(select case
      when count(*) = 0 then ${body} || ' AND conversation_id : ("")'
      when count(*) <= ${NARROW_MAX} then ${body} || ' AND conversation_id : (' || group_concat('"' || ${idToken} || '"', ' OR ') || ')'
      else ${body} end
    from (${source} limit ${NARROW_MAX + 1}) x)`;
}

/**
 * Every condition except the text match, on `m` (messages). The permission part is two
 * uncorrelated IN subqueries — the caller's memberships and, when allowed, the organization's
 * public channels — which both engines evaluate once into a hash/ephemeral index, then probe for
 * each text hit (index first, then permission).
 */
function conditions(s: SearchSpec): RawBuilder<unknown> {
  const mine = sql`select cm.conversation_id from conversation_members cm where cm.user_id = ${s.userId} and cm.org_id = ${s.orgId}`;
  const where = [sql`m.org_id = ${s.orgId}`, sql`m.deleted_at is null`];
  // Private notes of support conversations are for staff: customers (who cannot browse public
  // channels) never find them.
  if (!s.includePublic) where.push(sql`m.private = 0`);
  where.push(
    s.includePublic
      ? sql`(m.conversation_id in (${mine}) or m.conversation_id in (select pc.id from conversations pc where pc.org_id = ${s.orgId} and pc.kind = 'public'))`
      : sql`m.conversation_id in (${mine})`,
  );
  if (s.in.length) {
    where.push(sql`m.conversation_id in (select ic.id from conversations ic where ic.org_id = ${s.orgId} and (ic.id in (${sql.join(s.in)}) or ic.name in (${sql.join(s.in)})))`);
  }
  if (s.from.length) {
    where.push(sql`m.sender_type = 'user'`);
    where.push(sql`m.sender_id in (select fu.id from users fu where fu.org_id = ${s.orgId} and (fu.id in (${sql.join(s.from)}) or fu.username in (${sql.join(s.from)})))`);
  }
  if (s.before !== undefined) where.push(sql`m.created_at < ${s.before}`);
  if (s.after !== undefined) where.push(sql`m.created_at >= ${s.after}`);
  if (s.hasFile) where.push(sql`exists (select 1 from message_attachments ma where ma.message_id = m.id)`);
  return sql.join(where, sql` and `);
}

/**
 * The page of a ranked window `w` (columns id, created_at, rank, ...): after the position, best first,
 * with the window's size and oldest row so that a full window can be pinned by the cursor.
 * `rank` may be an expression: SQLite passes the boundary row's current rank.
 */
function pageOf(after: SearchAfter | undefined, rank: unknown, limit: number, oldest: RawBuilder<unknown>): RawBuilder<unknown> {
  const keyset = after ? sql`where (h.rank, h.created_at, h.id) < (${rank}, ${after.position.createdAt}, ${after.position.id})` : sql``;
  return sql`
    select h.*, (select count(*) from w) as window_count,
      (select f.id from w f order by ${oldest} limit 1) as floor_id,
      (select f.created_at from w f order by ${oldest} limit 1) as floor_created_at
    from w h ${keyset}
    order by h.rank desc, h.created_at desc, h.id desc
    limit ${limit}`;
}

function toResult(page: WindowRow[], rows: PageRow[], after: SearchAfter | undefined, window: number): SearchResult {
  const byId = new Map(rows.map((r) => [r.id, r]));
  const hits = page.flatMap((p) => {
    const r = byId.get(p.id);
    if (!r) return [];
    const { search_snippet, conv_kind, conv_name, ...rest } = r;
    // PostgreSQL's m.* includes the generated body_tsv column: not part of a message.
    const message = { ...rest } as MessageRow & { body_tsv?: unknown };
    delete message.body_tsv;
    return [{ message, conversation: { id: r.conversation_id, kind: conv_kind, name: conv_name }, rank: Number(p.rank), snippet: search_snippet }];
  });
  if (after) return { hits, floor: after.floor };
  const first = page[0];
  const full = first !== undefined && Number(first.window_count) >= window && first.floor_id !== null && first.floor_created_at !== null;
  return { hits, floor: full ? { id: first.floor_id!, createdAt: first.floor_created_at! } : null };
}

/** SQL for search. Every query is scoped by org_id. */
export class SearchRepo {
  readonly #dialect: DialectName;
  readonly #window: number;

  constructor(
    private readonly db: Kysely<DB>,
    options: { rankWindow?: number } = {},
  ) {
    this.#dialect = dialectOf(db);
    this.#window = options.rankWindow ?? RANK_WINDOW;
  }

  /**
   * Up to `limit` hits the spec allows, best first: rank descending, then newest first, then id.
   * A first page ranks the newest RANK_WINDOW matches; later pages (`after`) rank the matches from
   * the window's floor on, so new messages never shift a page. Deleted messages never match.
   */
  search(s: SearchSpec, after: SearchAfter | undefined, limit: number): Promise<SearchResult> {
    return this.#dialect === 'postgres' ? this.#searchPostgres(s, after, limit) : this.#searchSqlite(s, after, limit);
  }

  /**
   * Two statements: rank and page with the cheapest columns (SQLite computes every selected column
   * before sorting, so a snippet there would be made for every hit), then load the page's rows and
   * snippets. The window walks the index newest first (rowid order) and stops when it is full.
   */
  async #searchSqlite(s: SearchSpec, after: SearchAfter | undefined, limit: number): Promise<SearchResult> {
    const match = fts5Match(s.words, s.phrases);
    const hit = sql`from messages_fts join messages m on m.rowid = messages_fts.rowid where messages_fts match ${fts5Query(s, match)} and ${conditions(s)}`;
    // An unknown floor id (its message is gone) widens to everything rather than to nothing.
    const bound = after?.floor ? sql`and messages_fts.rowid >= coalesce((select fm.rowid from messages fm where fm.id = ${after.floor.id}), 0)` : sql``;
    const window = after ? sql`` : sql`order by messages_fts.rowid desc limit ${this.#window}`;
    // bm25 depends on the whole index (document count, average length): every new message shifts
    // every rank a little, so a rank kept in a cursor is stale by the next page. The boundary is the
    // last row's rank now, in this same statement (one snapshot), looked up only among the rows this
    // very search may return (a cursor cannot probe other messages); the kept rank serves when that
    // row no longer matches (edited or deleted since).
    // (cross join: SQLite must find the one row by id first, then ask FTS5 for that rowid only.)
    const rank = after
      ? sql`coalesce((select -bm25(messages_fts, 1, 0) from messages m cross join messages_fts on messages_fts.rowid = m.rowid
          where m.id = ${after.position.id} and messages_fts match ${match} and ${conditions(s)}), ${after.position.rank})`
      : undefined;
    const page = await sql<SqliteWindowRow>`
      with w as (select m.rowid as rid, m.id, m.created_at, -bm25(messages_fts, 1, 0) as rank ${hit} ${bound} ${window})
      ${pageOf(after, rank, limit, sql`f.rid`)}`.execute(this.db);
    if (page.rows.length === 0) return { hits: [], floor: after?.floor ?? null };
    const rows = await sql<PageRow>`
      select m.*, c.kind as conv_kind, c.name as conv_name,
        snippet(messages_fts, 0, ${SNIPPET_OPEN}, ${SNIPPET_CLOSE}, ${ELLIPSIS}, 24) as search_snippet
      from messages_fts
      join messages m on m.rowid = messages_fts.rowid
      join conversations c on c.id = m.conversation_id
      where messages_fts match ${match} and messages_fts.rowid in (${sql.join(page.rows.map((r) => r.rid))})`.execute(this.db);
    return toResult(page.rows, rows.rows, after, this.#window);
  }

  /**
   * One statement: the window (newest matches, over the GIN index or backwards over
   * messages_org_created_idx, whichever the planner finds cheaper), rank, page, then the page's
   * rows and snippets only. ts_rank_cd depends on the row alone, so kept ranks stay valid.
   */
  async #searchPostgres(s: SearchSpec, after: SearchAfter | undefined, limit: number): Promise<SearchResult> {
    const parts = [...(s.words.length ? [sql`plainto_tsquery('simple', ${s.words.join(' ')})`] : []), ...s.phrases.map((p) => sql`phraseto_tsquery('simple', ${p})`)];
    const tsq = sql`(${sql.join(parts, sql` && `)})`;
    // Narrowed: the words and any of the few conversations' lexemes (see migration 0005), in one
    // GIN lookup; 'conversation ' alone is in no row, so no conversation means no hit.
    const source = narrowTo(s);
    const match = source
      ? sql`(select case when count(*) <= ${NARROW_MAX}
          then ${tsq} && coalesce(string_agg(quote_literal('conversation ' || right(x.id, 12)), ' | ')::tsquery, '''conversation '''::tsquery)
          else ${tsq} end
        from (${source} limit ${NARROW_MAX + 1}) x)`
      : tsq;
    const bound = after?.floor ? sql`and (m.created_at, m.id) >= (${after.floor.createdAt}, ${after.floor.id})` : sql``;
    const window = after ? sql`` : sql`order by m.created_at desc, m.id desc limit ${this.#window}`;
    // Cover density divided by 1 + log(length): more and closer hits in a shorter message rank
    // higher, much as bm25 does on SQLite.
    // The window first, ranked after: ranking inside it would rank every match before the sort.
    const rows = await sql<PageRow & WindowRow>`
      with cand as (
        select m.id, m.created_at, m.body_tsv from messages m
        where m.body_tsv @@ ${match} and ${conditions(s)} ${bound} ${window}
      ), w as materialized (
        select cand.id, cand.created_at, ts_rank_cd(cand.body_tsv, ${tsq}, 1)::float8 as rank from cand
      ), p as (${pageOf(after, after?.position.rank, limit, sql`f.created_at, f.id`)})
      select m.*, p.rank, p.window_count, p.floor_id, p.floor_created_at, c.kind as conv_kind, c.name as conv_name,
        ts_headline('simple', m.body, ${tsq}, ${HEADLINE_OPTIONS}) as search_snippet
      from p join messages m on m.id = p.id join conversations c on c.id = m.conversation_id
      order by p.rank desc, m.created_at desc, m.id desc`.execute(this.db);
    return toResult(rows.rows, rows.rows, after, this.#window);
  }
}
