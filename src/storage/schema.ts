import type { Generated } from 'kysely';

/**
 * Kysely table types. Conventions, the same on both engines:
 * - ids are text UUIDs;
 * - timestamps are ISO-8601 UTC strings (TEXT on SQLite, timestamptz on PostgreSQL read back as ISO);
 * - booleans are integers 0/1 (better-sqlite3 binds no booleans);
 * - JSON is text, parsed by the repository that owns it.
 */

export interface OrganizationsTable {
  id: string;
  name: string;
  slug: string;
  registration_open: number;
  default_role: string;
  settings: string;
  created_at: string;
  updated_at: string;
}

export interface UsersTable {
  id: string;
  org_id: string;
  username: string;
  email: string | null;
  name: string;
  password_hash: string | null;
  role: string;
  status: string;
  status_text: string | null;
  avatar_url: string | null;
  external_ref: string | null;
  active: number;
  platform_admin: number;
  last_seen_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface SessionsTable {
  id: string;
  org_id: string;
  user_id: string;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
  revoked_reason: string | null;
  user_agent: string | null;
  ip: string | null;
}

export interface RefreshTokensTable {
  id: string;
  org_id: string;
  session_id: string;
  token_hash: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

export interface ApiKeysTable {
  id: string;
  org_id: string;
  name: string;
  prefix: string;
  key_hash: string;
  created_by: string | null;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}


export interface ConversationsTable {
  id: string;
  org_id: string;
  /** public, private, direct, group (support comes with the support issue) */
  kind: string;
  name: string | null;
  topic: string | null;
  purpose: string | null;
  dm_key: string | null;
  created_by: string | null;
  archived_at: string | null;
  last_seq: number;
  /** Moved by every change to the conversation's messages (new, edit, delete, reaction, pin, thread counts). */
  messages_version: number;
  /** Support conversations (kind 'support'): where from, with whom, who handles it. Null otherwise. */
  inbox_id: string | null;
  contact_id: string | null;
  assignee_id: string | null;
  team_id: string | null;
  priority: string | null;
  snoozed_until: string | null;
  /** open, pending, snoozed, resolved, closed (support conversations). */
  status: string | null;
  last_message_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface ConversationMembersTable {
  conversation_id: string;
  user_id: string;
  org_id: string;
  /** owner, admin, member */
  role: string;
  last_read_seq: number;
  muted: number;
  joined_at: string;
}

export interface MessagesTable {
  id: string;
  org_id: string;
  conversation_id: string;
  seq: number;
  /** user, contact, system, bot */
  sender_type: string;
  sender_id: string | null;
  type: string;
  body: string;
  /** JSON: location, attachments and other type-specific fields */
  metadata: string | null;
  parent_id: string | null;
  client_msg_id: string | null;
  private: number;
  edited_at: string | null;
  deleted_at: string | null;
  created_at: string;
  /** 1 when shown in the channel: top-level messages, and thread replies also sent to the channel */
  in_channel: number;
  reply_count: number;
  last_reply_at: string | null;
  pinned_at: string | null;
  pinned_by: string | null;
  /** JSON {"users": [ids], "channel": bool, "here": bool} */
  mentions: string | null;
  /** Reactions on this message (all emoji), kept with the reactions rows. */
  reaction_count: number;
  /** Files this message carries, kept with the message_attachments rows. */
  attachment_count: number;
  /** The conversation's messages_version at this message's last change (realtime resume point). */
  version_seq: number;
  /** The platform's id of the message (inbound: theirs; outbound: what their send API answered). */
  external_id: string | null;
  /** Outbound to a platform: pending, sent, delivered, read, played, failed. */
  delivery_status: string | null;
  delivery_error: string | null;
}

export interface ReactionsTable {
  message_id: string;
  user_id: string;
  emoji: string;
  org_id: string;
  created_at: string;
}

export interface MessageMentionsTable {
  message_id: string;
  user_id: string;
  org_id: string;
  conversation_id: string;
  seq: number;
}

export interface ThreadFollowsTable {
  root_id: string;
  user_id: string;
  org_id: string;
  conversation_id: string;
  last_read_seq: number;
  created_at: string;
}

export interface FilesTable {
  id: string;
  org_id: string;
  /** null once the uploader's user row is gone */
  uploader_id: string | null;
  /** where the bytes are in the file storage: "<org id>/<file id>" */
  storage_key: string;
  filename: string;
  /** sniffed from the bytes at upload */
  content_type: string;
  size: number;
  /** lower-case hex */
  sha256: string;
  width: number | null;
  height: number | null;
  created_at: string;
}

export interface MessageAttachmentsTable {
  message_id: string;
  file_id: string;
  org_id: string;
  /** order of the attachments in the message, from 0 */
  position: number;
}

export interface InboxesTable {
  id: string;
  org_id: string;
  name: string;
  platform: string;
  credentials_enc: string | null;
  webhook_token: string;
  settings: string | null;
  auto_assign: number;
  agent_capacity: number;
  reassign_offline: number;
  created_at: string;
  updated_at: string;
}

export interface InboxMembersTable {
  inbox_id: string;
  user_id: string;
  org_id: string;
  last_assigned_at: string | null;
  created_at: string;
}

export interface TeamsTable {
  id: string;
  org_id: string;
  name: string;
  created_at: string;
}

export interface TeamMembersTable {
  team_id: string;
  user_id: string;
  org_id: string;
}

export interface ContactsTable {
  id: string;
  org_id: string;
  name: string | null;
  email: string | null;
  phone: string | null;
  user_id: string | null;
  custom_attributes: string | null;
  merged_into: string | null;
  created_at: string;
  updated_at: string;
}

export interface ContactIdentitiesTable {
  id: string;
  org_id: string;
  inbox_id: string;
  contact_id: string;
  external_id: string;
  created_at: string;
}

export interface OutboxTable {
  id: string;
  org_id: string;
  target: string;
  endpoint_id: string | null;
  event_name: string;
  event_id: string;
  payload: string;
  idempotency_key: string;
  status: string;
  attempts: number;
  next_attempt_at: string;
  locked_until: string | null;
  last_error: string | null;
  response_status: number | null;
  created_at: string;
  delivered_at: string | null;
}

export interface WebhookEndpointsTable {
  id: string;
  org_id: string;
  url: string;
  secret_enc: string;
  events: string;
  active: number;
  created_at: string;
  updated_at: string;
}

export interface WebhookEventsTable {
  id: string;
  org_id: string;
  inbox_id: string;
  platform: string;
  body: string;
  status: string;
  summary: string | null;
  error: string | null;
  received_at: string;
  processed_at: string | null;
  /** The chat the delivery is about ('' when unknown): deliveries of one chat are processed in order. */
  order_key: Generated<string>;
}

export interface InboundDedupeTable {
  inbox_id: string;
  external_id: string;
  created_at: string;
}

export interface ChatwootMirrorsTable {
  inbox_id: string;
  org_id: string;
  url: string;
  account_id: number;
  cw_inbox_id: number;
  token_enc: string;
  webhook_secret_enc: string | null;
  signature_mode: string;
  sign_agent_name: number;
  description: string | null;
  webhook_token: string;
  created_at: string;
  updated_at: string;
}

export interface ChatwootLinksTable {
  inbox_id: string;
  kind: string;
  parley_id: string;
  cw_id: string | null;
  source_id: string | null;
  created_at: string;
}

export interface ChatwootCursorsTable {
  conversation_id: string;
  inbox_id: string;
  mirrored_seq: number;
  locked_until: string | null;
}

export interface DB {
  organizations: OrganizationsTable;
  users: UsersTable;
  sessions: SessionsTable;
  refresh_tokens: RefreshTokensTable;
  api_keys: ApiKeysTable;
  conversations: ConversationsTable;
  conversation_members: ConversationMembersTable;
  messages: MessagesTable;
  files: FilesTable;
  message_attachments: MessageAttachmentsTable;
  reactions: ReactionsTable;
  message_mentions: MessageMentionsTable;
  thread_follows: ThreadFollowsTable;
  inboxes: InboxesTable;
  inbox_members: InboxMembersTable;
  teams: TeamsTable;
  team_members: TeamMembersTable;
  contacts: ContactsTable;
  contact_identities: ContactIdentitiesTable;
  outbox: OutboxTable;
  webhook_endpoints: WebhookEndpointsTable;
  webhook_events: WebhookEventsTable;
  inbound_dedupe: InboundDedupeTable;
  chatwoot_mirrors: ChatwootMirrorsTable;
  chatwoot_links: ChatwootLinksTable;
  chatwoot_cursors: ChatwootCursorsTable;
}
