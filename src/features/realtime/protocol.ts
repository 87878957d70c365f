import { Type, type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { SendMessageBody } from '../messages/messages.schemas.ts';

/**
 * Client → server messages (DESIGN.md): `{ type, id?, channel_id?, payload? }`. `id` is the
 * client's request id, echoed in the `ack` or `error` that answers it.
 */
const Id = Type.Optional(Type.String({ maxLength: 100 }));
const Uuid = Type.String({ format: 'uuid' });

const ClientMessageSchema = Type.Union([
  Type.Object({ type: Type.Literal('ping'), id: Id }),
  Type.Object({ type: Type.Literal('subscribe'), id: Id, channel_id: Uuid, since_seq: Type.Optional(Type.Integer({ minimum: 0 })) }),
  Type.Object({ type: Type.Literal('unsubscribe'), id: Id, channel_id: Uuid }),
  Type.Object({ type: Type.Literal('typing'), id: Id, channel_id: Uuid }),
  Type.Object({ type: Type.Literal('send_message'), id: Id, channel_id: Uuid, payload: SendMessageBody }),
  Type.Object({ type: Type.Literal('mark_read'), id: Id, channel_id: Uuid, payload: Type.Optional(Type.Object({ message_id: Type.Optional(Uuid) })) }),
]);
export type ClientMessage = Static<typeof ClientMessageSchema>;

const check = Compile(ClientMessageSchema);
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Parse and validate a text frame; an error names what is wrong and echoes the request id when there is one. */
export function parseClientMessage(text: string | null): { message: ClientMessage } | { error: string; id?: string } {
  if (text === null) return { error: 'Binary frames are not part of the protocol; send JSON text' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { error: 'The frame is not valid JSON' };
  }
  const id = typeof (value as { id?: unknown })?.id === 'string' ? (value as { id: string }).id : undefined;
  if (!check.Check(value)) {
    const first = [...check.Errors(value)][0];
    return { error: first ? `${first.instancePath || '/'} ${first.message}` : 'Unknown message', ...(id ? { id } : {}) };
  }
  const m = value as ClientMessage;
  // TypeBox checks formats only when registered; check the ids here.
  if ('channel_id' in m && !UUID_RE.test(m.channel_id)) return { error: '/channel_id must be a uuid', ...(id ? { id } : {}) };
  return { message: m };
}
