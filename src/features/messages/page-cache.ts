import type { MessageJsonRow } from './messages.repo.ts';

/**
 * History pages as the database answered them (MessageJsonRow[], the same for every reader),
 * keyed by the conversation's `messages_version`: every change to the conversation's messages
 * moves that version in the same transaction, and readers take it from the access check they run
 * anyway, so a cached page is only ever used while nothing in the conversation has changed — on
 * this node or any other. Per-reader parts (whether the caller reacted) are added after the cache.
 * Least recently used pages are dropped beyond `maxPages`; 0 turns the cache off.
 */
export class HistoryPageCache {
  #pages = new Map<string, MessageJsonRow[]>();
  readonly stats = { hits: 0, misses: 0 };

  constructor(private readonly maxPages: number) {}

  /** Response bodies of cached pages (see body()); an entry goes with its page. */
  readonly #bodies = new WeakMap<MessageJsonRow[], Buffer>();
  /** Cached pages served at least once from the cache. */
  readonly #reused = new WeakSet<MessageJsonRow[]>();

  /**
   * The response body of the page built from `rows` (an array this cache returned), made once per
   * cached page: a request then sends these bytes, with no join of the messages' JSON and no UTF-8
   * encoding of it. Only for pages that are the same for every reader (the caller checks), and only
   * from a page's second read on: a page read once (many different pages, each a cache miss) would
   * only add a copy of its body outside the JavaScript heap (measured: slower). Else null.
   */
  body(rows: MessageJsonRow[], build: () => string): Buffer | null {
    if (!this.#reused.has(rows)) return null;
    let bytes = this.#bodies.get(rows);
    if (!bytes) this.#bodies.set(rows, (bytes = Buffer.from(build())));
    return bytes;
  }

  async get(key: string, load: () => Promise<MessageJsonRow[]>): Promise<MessageJsonRow[]> {
    if (this.maxPages <= 0) return load();
    const hit = this.#pages.get(key);
    if (hit) {
      this.stats.hits += 1;
      this.#reused.add(hit);
      // Most recently used last.
      this.#pages.delete(key);
      this.#pages.set(key, hit);
      return hit;
    }
    this.stats.misses += 1;
    const rows = await load();
    this.#pages.set(key, rows);
    if (this.#pages.size > this.maxPages) this.#pages.delete(this.#pages.keys().next().value as string);
    return rows;
  }
}
