import { AppError } from '../../platform/errors.ts';

/**
 * A search box query, parsed. Free text is words (all must occur) and "quoted phrases" (the words
 * in that order); filters narrow the set. Nothing here is ever spliced into SQL: the repository
 * binds every value as a parameter.
 */
export interface ParsedSearch {
  /** Words, each with at least one letter or digit. */
  words: string[];
  /** Quoted phrases, each with at least one letter or digit. */
  phrases: string[];
  /** `in:` values: channel names (lower case, without '#') or conversation ids. Any of them. */
  in: string[];
  /** `from:` values: usernames (lower case, without '@') or user ids. Any of them. */
  from: string[];
  /** `before:YYYY-MM-DD`: created before that day began (UTC), as an ISO instant. */
  before?: string;
  /** `after:YYYY-MM-DD`: created after that day ended (UTC), as an ISO instant (inclusive bound). */
  after?: string;
  /** `has:file`: only messages with an attachment. */
  hasFile: boolean;
}

export const MAX_TERMS = 16;
export const MAX_FILTER_VALUES = 10;
const MAX_VALUE = 100;

const FILTER_RE = /^(in|from|before|after|has):(.*)$/is;
const TOKEN_RE = /"([^"]*)"?|(\S+)/gu;
const HAS_TEXT_RE = /[\p{L}\p{N}]/u;
const CONTROL_RE = /\p{Cc}/gu;
const DAY_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

const invalid = (message: string, data: Record<string, unknown> = {}) => new AppError('search.invalid_query', message, data);

/** Start of a UTC day given as YYYY-MM-DD, in ms; undefined when it is no real date. */
function dayStart(value: string): number | undefined {
  const m = DAY_RE.exec(value);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = Date.UTC(y, mo - 1, d);
  const back = new Date(t);
  return back.getUTCFullYear() === y && back.getUTCMonth() === mo - 1 && back.getUTCDate() === d ? t : undefined;
}

function addFilter(out: ParsedSearch, key: string, raw: string): void {
  const value = raw.trim();
  if (value === '' || value.length > MAX_VALUE) throw invalid(`The ${key}: filter needs a value of at most ${MAX_VALUE} characters`, { filter: key });
  switch (key) {
    case 'in':
    case 'from': {
      const list = out[key];
      if (list.length >= MAX_FILTER_VALUES) throw invalid(`At most ${MAX_FILTER_VALUES} ${key}: filters`, { filter: key });
      list.push(value.replace(key === 'in' ? /^#/ : /^@/, '').toLowerCase());
      return;
    }
    case 'before':
    case 'after': {
      const t = dayStart(value);
      const iso = t === undefined ? '' : new Date(key === 'after' ? t + 86_400_000 : t).toISOString();
      // Four-digit years only: after:9999-12-31 would end in year 10000, which PostgreSQL refuses.
      if (!/^\d{4}-/.test(iso)) throw invalid(`The ${key}: filter takes a date as YYYY-MM-DD`, { filter: key });
      out[key] = iso;
      return;
    }
    default: {
      if (value.toLowerCase() !== 'file') throw new AppError('search.unsupported_filter', `has:${value} is not supported; has:file is`, { filter: 'has' });
      out.hasFile = true;
    }
  }
}

/**
 * Parse `q`: words, "phrases", and the filters in:, from:, before:, after:, has:file. A word with
 * an unknown `key:` prefix is plain text. Throws 400 search.invalid_query for a bad filter value
 * or a query without any word, 400 search.unsupported_filter for has:<anything but file>.
 */
export function parseSearchQuery(q: string): ParsedSearch {
  const out: ParsedSearch = { words: [], phrases: [], in: [], from: [], hasFile: false };
  // Control characters (NUL among them, which PostgreSQL refuses in text) separate words.
  for (const m of q.replace(CONTROL_RE, ' ').matchAll(TOKEN_RE)) {
    const [, phrase, word] = m;
    if (phrase !== undefined) {
      const p = phrase.trim().replace(/\s+/g, ' ');
      if (HAS_TEXT_RE.test(p)) out.phrases.push(p);
      continue;
    }
    const filter = FILTER_RE.exec(word!);
    if (filter) addFilter(out, filter[1]!.toLowerCase(), filter[2]!);
    else if (HAS_TEXT_RE.test(word!)) out.words.push(word!);
  }
  const terms = out.words.length + out.phrases.length;
  if (terms === 0) throw invalid('Search for at least one word (filters alone are not enough)');
  if (terms > MAX_TERMS) throw invalid(`At most ${MAX_TERMS} words and phrases`);
  return out;
}
