import { Type, type Static } from 'typebox';

const HttpUrl = (description: string) => Type.String({ minLength: 8, maxLength: 500, pattern: '^https?://[^\\s/?#]+[^\\s]*$', description });
const SignatureMode = Type.Union([Type.Literal('off'), Type.Literal('warn'), Type.Literal('enforce')], {
  description: 'X-Chatwoot-Signature check (CONNECTORS.md §5.2): enforce refuses unsigned or wrongly signed deliveries, warn only counts them, off skips the check. Default: enforce when a webhook_secret is set, else off.',
});

/** The Chatwoot side of a mirror, as written. */
const ChatwootFields = {
  url: HttpUrl('base URL of the Chatwoot installation, e.g. https://chatwoot.example.com'),
  account_id: Type.Integer({ minimum: 1 }),
  inbox_id: Type.Integer({ minimum: 1, description: 'the Chatwoot API-channel inbox the conversations go to' }),
  token: Type.String({ minLength: 1, maxLength: 200, description: 'a Chatwoot user or agent-bot access token (write-only, stored encrypted)' }),
  webhook_secret: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 200 }), Type.Null()], { description: 'the inbox’s or webhook’s signing secret (write-only, stored encrypted); null removes it' })),
  signature: Type.Optional(SignatureMode),
  sign_agent_name: Type.Optional(Type.Boolean({ description: 'prefix replies going out with the Chatwoot agent’s name (*Name:*)' })),
};
export const ChatwootBody = Type.Object(ChatwootFields, { additionalProperties: false });
export type ChatwootBody = Static<typeof ChatwootBody>;
export const ChatwootPatch = Type.Partial(Type.Object(ChatwootFields, { additionalProperties: false }), { additionalProperties: false, minProperties: 1 });
export type ChatwootPatch = Static<typeof ChatwootPatch>;

export const Mirror = Type.Object({
  inbox_id: Type.String({ description: 'the Parley inbox mirrored' }),
  url: Type.String(),
  account_id: Type.Integer(),
  chatwoot_inbox_id: Type.Integer(),
  has_token: Type.Boolean(),
  has_webhook_secret: Type.Boolean(),
  signature: SignatureMode,
  sign_agent_name: Type.Boolean(),
  webhook_url: Type.String({ description: 'set it as the Chatwoot API inbox’s webhook URL (it carries a secret token)' }),
  created_at: Type.String(),
  updated_at: Type.String(),
});
export type MirrorDto = Static<typeof Mirror>;

const GatewayFields = {
  kind: Type.Union([Type.Literal('codechat'), Type.Literal('evolution')]),
  base_url: HttpUrl('base URL of the Codechat / Evolution server'),
  instance: Type.String({ minLength: 1, maxLength: 100, pattern: '^[^/?#\\s]+$', description: 'the instance (one WhatsApp number) on that server' }),
  api_key: Type.String({ minLength: 1, maxLength: 500, description: 'the `apikey` header value (write-only, stored encrypted)' }),
};

export const CreateSessionBody = Type.Object(
  {
    session_id: Type.Optional(Type.String({ format: 'uuid', description: 'made when absent' })),
    description: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    chatwoot: ChatwootBody,
    gateway: Type.Object(GatewayFields, { additionalProperties: false }),
  },
  { additionalProperties: false },
);
export type CreateSessionBody = Static<typeof CreateSessionBody>;

export const UpdateSessionBody = Type.Object(
  {
    description: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    chatwoot: Type.Optional(ChatwootPatch),
    gateway: Type.Optional(Type.Partial(Type.Object(GatewayFields, { additionalProperties: false }), { additionalProperties: false, minProperties: 1 })),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateSessionBody = Static<typeof UpdateSessionBody>;

export const Session = Type.Object({
  session_id: Type.String({ description: 'also the id of the session’s gateway inbox' }),
  description: Type.Union([Type.String(), Type.Null()]),
  gateway: Type.Object({
    kind: Type.String(),
    base_url: Type.String(),
    instance: Type.String(),
    has_api_key: Type.Boolean(),
    webhook_url: Type.String({ description: 'set it as the instance’s webhook URL (it carries a secret token)' }),
  }),
  chatwoot: Mirror,
  created_at: Type.String(),
  updated_at: Type.String(),
});
export type SessionDto = Static<typeof Session>;

export const SessionList = Type.Object({ data: Type.Array(Session) });
export const SessionParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
