import { Type, type Static } from 'typebox';
import { Nullable } from '../../platform/schema.ts';
import { Message } from '../messages/messages.schemas.ts';

export const SearchQuery = Type.Object({
  q: Type.String({
    minLength: 1,
    maxLength: 500,
    description:
      'words (all must occur) and "quoted phrases", plus filters: in:<channel name or id>, from:<username or user id>, ' +
      'before:YYYY-MM-DD, after:YYYY-MM-DD (UTC days, both exclusive), has:file. Repeated in: or from: mean any of them.',
  }),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  cursor: Type.Optional(Type.String({ maxLength: 512, description: 'next_cursor of the previous page, with the same q' })),
});
export type SearchQuery = Static<typeof SearchQuery>;

export const SearchHit = Type.Object({
  message: Message,
  conversation: Type.Object({ id: Type.String(), kind: Type.String(), name: Nullable(Type.String()) }),
  snippet: Type.String({ description: 'HTML: the text around the hits, escaped, with each hit in <mark></mark>' }),
  rank: Type.Number({ description: 'relevance, higher is better; comparable within one response only' }),
});
export type SearchHitDto = Static<typeof SearchHit>;

export const SearchPage = Type.Object({
  data: Type.Array(SearchHit, { description: 'best first, then newest first' }),
  next_cursor: Nullable(Type.String()),
});
export type SearchPageDto = Static<typeof SearchPage>;
