import type { IncomingMessage } from 'node:http';
import type { RawData, WebSocket } from 'ws';
import { checkAccess, type Principal } from '../../access/access.ts';
import type { Invalidation } from '../../access/principal-cache.ts';
import { INVALIDATION_TOPIC } from '../../access/principal-cache.ts';
import type { EventBus } from '../../bus/event-bus.ts';
import { SharedTopics } from '../../bus/shared-topics.ts';
import type { RateLimiter } from '../../limits/rate-limiter.ts';
import { type Clock, isoNow } from '../../platform/clock.ts';
import { AppError } from '../../platform/errors.ts';
import { newId } from '../../platform/ids.ts';
import { queryParam } from '../../platform/query-param.ts';
import { forEachInTurns } from '../../platform/turns.ts';
import type { Authenticator, Credentials } from '../auth/authenticator.ts';
import type { ConversationsService } from '../conversations/conversations.service.ts';
import type { MessagesService } from '../messages/messages.service.ts';
import type { ReadStateService } from '../read-state/read-state.service.ts';
import { ConversationFeed, type FeedSubscriber } from './feed.ts';
import type { PresenceService } from './presence.ts';
import { envelope, parseFrame, type RealtimePublisher, topics } from './publisher.ts';
import type { RealtimeMetrics } from './realtime.metrics.ts';
import { parseClientMessage, type ClientMessage } from './protocol.ts';
import { firstHeader } from '../../platform/headers.ts';

/** Close codes (README, "Realtime"): they mirror HTTP statuses. */
export const CLOSE = {
  /** No or invalid credentials, or the session ended: get a new token, then reconnect. */
  unauthorized: 4401,
  /** Origin not allowed: do not reconnect. */
  forbidden: 4403,
  /** No pong to the server's ping in time: reconnect at once (with resume). */
  timeout: 4408,
  /** Too many connections or messages: reconnect after a back-off. */
  tooMany: 4429,
} as const;

export interface GatewayConfig {
  allowedOrigins: string[] | '*';
  heartbeatMs: number;
  maxBufferedBytes: number;
  resumeLimit: number;
  connectLimit: { max: number; windowMs: number };
  messageLimit: { max: number; windowMs: number };
  typingThrottleMs: number;
  typingTtlMs: number;
  idleAfterMs: number;
  gapWaitMs: number;
  fanoutChunk: number;
}

export interface GatewayDeps {
  bus: EventBus;
  authenticator: Authenticator;
  conversations: ConversationsService;
  messages: MessagesService;
  readState: ReadStateService;
  presence: PresenceService;
  publisher: RealtimePublisher;
  limiter: RateLimiter;
  clock: Clock;
  metrics: RealtimeMetrics;
  log: { warn(obj: object, msg: string): void };
  config: GatewayConfig;
}

interface Subscription extends FeedSubscriber {
  conversationId: string;
  /** Sees private notes (not a support conversation's customer). */
  staff: boolean;
  /** While a resume replays from the database, live events wait here. */
  buffer: Array<{ frame: string | Buffer; seq: number | undefined; staffOnly: boolean }> | null;
}

const NO_SUBS: ReadonlyMap<string, Subscription> = new Map();
/** ws sends a Buffer as a binary frame unless told otherwise. */
const TEXT_FRAME = { binary: false } as const;

/** The heartbeat visits one of this many groups of connections at a time (see Gateway.#slices). */
const HEARTBEAT_SLICES = 10;
/**
 * Pings written per event-loop turn. Each is a socket write (15–60 µs over loopback); the 500 of a
 * group of 5,000 sockets in one turn stalled the loop 10–30 ms every 2.5 s (small-rooms benchmark).
 */
const PINGS_PER_TURN = 32;

/** One WebSocket connection. */
class Connection {
  readonly id = newId();
  /** Conversations subscribed; made on the first subscribe (most sockets of a large fleet are idle). */
  #subs: Map<string, Subscription> | null = null;

  get subs(): ReadonlyMap<string, Subscription> {
    return this.#subs ?? NO_SUBS;
  }

  setSub(conversationId: string, sub: Subscription): void {
    (this.#subs ??= new Map()).set(conversationId, sub);
  }

  deleteSub(conversationId: string): void {
    this.#subs?.delete(conversationId);
  }
  /** Counted in the node's personal and organization topics (see Gateway.#shared). */
  joined = false;
  /** Its heartbeat group (Gateway.#slices). */
  slice = 0;
  alive = true;
  idle = false;
  lastActivity: number;
  closed = false;
  #corked = false;
  #sentThisTurn = false;

  constructor(
    readonly ws: WebSocket,
    public principal: Principal,
    readonly credentials: Credentials,
    readonly gateway: Gateway,
    now: number,
  ) {
    this.lastActivity = now;
  }

  get userId(): string {
    return this.principal.userId!;
  }

  /**
   * Send a frame. The first frame of an event-loop turn is written at once (no wait for the end
   * of the turn: a big room's first sockets are not held back by the rest of its fan-out); from
   * the second on, the socket is corked and flushed once at the end of the turn (many frames, one
   * write). A client whose unread backlog passes the limit is cut off, so it cannot slow others.
   */
  send(frame: string | Buffer): void {
    if (this.closed) return;
    if (!this.#sentThisTurn) {
      this.#sentThisTurn = true;
      this.gateway.scheduleFlush(this);
    } else if (!this.#corked) {
      const socket = (this.ws as unknown as { _socket?: { cork(): void } })._socket;
      if (socket) {
        socket.cork();
        this.#corked = true;
      }
    }
    // Bytes encoded once for many sockets go out as a text frame, like the string would.
    if (typeof frame === 'string') this.ws.send(frame);
    else this.ws.send(frame, TEXT_FRAME);
    this.gateway.metrics.deliveries.inc();
    if (this.ws.bufferedAmount > this.gateway.config.maxBufferedBytes) this.gateway.dropSlow(this);
  }

  flush(): void {
    this.#sentThisTurn = false;
    if (!this.#corked) return;
    this.#corked = false;
    (this.ws as unknown as { _socket?: { uncork(): void } })._socket?.uncork();
  }
}

/**
 * The realtime gateway of one node: WebSocket connections, their subscriptions, and the bus.
 * Conversation events come through one ConversationFeed per conversation (ordered, gapless,
 * serialized once); personal (`user:<id>`) and organization (`org:<id>`: presence) topics are
 * subscribed per connection. See README "Realtime" for the protocol.
 */
export class Gateway {
  readonly connections = new Set<Connection>();
  /** This node's connections per user and per organization: one bus subscription each, shared by them. */
  readonly #byUser = new Map<string, Set<Connection>>();
  readonly #byOrg = new Map<string, Set<Connection>>();
  readonly #shared: SharedTopics;
  readonly #feeds = new Map<string, { feed: ConversationFeed; unsubscribe: Promise<() => Promise<void>> }>();
  readonly #toFlush = new Set<Connection>();
  #flushScheduled = false;
  #heartbeat: NodeJS.Timeout | undefined;
  /**
   * Connections in HEARTBEAT_SLICES groups, one group pinged per heartbeatMs / HEARTBEAT_SLICES:
   * each socket is still pinged once per heartbeatMs, but 5,000 sockets pinged at once (one write
   * each) stalled the event loop for tens of ms every interval, seen as p99 in the small-rooms bench.
   */
  readonly #slices: Array<Set<Connection>> = Array.from({ length: HEARTBEAT_SLICES }, () => new Set());
  #nextSlice = 0;
  #sliceToAdd = 0;
  #unsubInvalidation: (() => Promise<void>) | undefined;
  readonly #typingSent = new Map<string, number>();

  constructor(private readonly deps: GatewayDeps) {
    this.#shared = new SharedTopics(deps.bus);
  }

  get config(): GatewayConfig {
    return this.deps.config;
  }

  get metrics(): RealtimeMetrics {
    return this.deps.metrics;
  }

  async start(): Promise<void> {
    this.#unsubInvalidation = await this.deps.bus.subscribe(INVALIDATION_TOPIC, (payload) => this.#onInvalidation(payload));
    // Back from a bus outage: events of other nodes may be lost; every feed reads what it missed.
    this.deps.bus.onReconnect?.(() => {
      for (const { feed } of this.#feeds.values()) void feed.catchUp();
    });
    this.#heartbeat = setInterval(() => void this.#tick(), Math.max(1, Math.floor(this.config.heartbeatMs / HEARTBEAT_SLICES)));
    this.#heartbeat.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#heartbeat);
    await this.#unsubInvalidation?.();
    for (const c of [...this.connections]) c.ws.close(1001, 'server shutting down');
    for (const c of [...this.connections]) await this.#cleanup(c);
    for (const { feed, unsubscribe } of this.#feeds.values()) {
      feed.stop();
      await (await unsubscribe)();
    }
    this.#feeds.clear();
  }

  // ------------------------------------------------------------------ connections

  /** A socket just upgraded: check origin, limits and credentials, then serve it. `ip` is asked for only when the connect limit is on. */
  async accept(ws: WebSocket, req: IncomingMessage, ip: () => string): Promise<void> {
    const origin = req.headers.origin;
    if (origin !== undefined && this.config.allowedOrigins !== '*' && !this.config.allowedOrigins.includes(origin)) {
      this.metrics.rejected.inc({ reason: 'origin' });
      return ws.close(CLOSE.forbidden, 'origin not allowed');
    }
    // The client's frames wait until hello is sent (none lost before the listeners are on, and
    // hello comes first): the socket is paused (ws holds what comes) before any wait, and resumed
    // after hello. The usual connect waits for nothing: credentials resolved recently, the user's
    // and organization's topics already subscribed on this node.
    let paused = false;
    const { max, windowMs } = this.config.connectLimit;
    if (max > 0) {
      paused = true;
      ws.pause?.();
      const w = await this.deps.limiter.hit(`ws:connect:${ip()}`, windowMs);
      if (w.count > max) return this.#refuse(ws, paused, CLOSE.tooMany, 'rate_limited', 'too many connections');
    }
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const token = q === -1 ? null : queryParam(url.slice(q + 1), 'token');
    const authorization = token ? `Bearer ${token}` : req.headers.authorization;
    const credentials: Credentials = { authorization, apiKey: firstHeader(req.headers, 'x-api-key'), onBehalfOf: firstHeader(req.headers, 'x-on-behalf-of') };
    let principal = this.deps.authenticator.cached(credentials);
    if (principal === undefined) {
      if (!paused) ws.pause?.();
      paused = true;
      principal = await this.deps.authenticator.authenticate(credentials).catch(() => undefined);
    }
    if (principal === undefined || principal.userId === null) return this.#refuse(ws, paused, CLOSE.unauthorized, 'unauthorized', 'unauthorized');
    if (ws.readyState !== ws.OPEN) return;
    const conn = new Connection(ws, principal, credentials, this, this.deps.clock.now());
    this.connections.add(conn);
    conn.slice = this.#sliceToAdd;
    this.#slices[conn.slice]!.add(conn);
    this.#sliceToAdd = (this.#sliceToAdd + 1) % HEARTBEAT_SLICES;
    this.metrics.connections.inc();

    // Listeners shared by every socket (no closures per connection): the socket carries its connection.
    (ws as SocketWithConnection)[CONNECTION] = conn;
    ws.on('message', onSocketMessage);
    ws.on('pong', onSocketPong);
    ws.on('close', onSocketClose);
    ws.on('error', onSocketError);

    const userId = conn.userId;
    const orgId = principal.orgId;
    const userTopic = topics.user(userId);
    const orgTopic = topics.org(orgId);
    const user = this.#shared.acquire(userTopic, (frame) => this.#toUser(userId, frame));
    const org = this.#shared.acquire(orgTopic, (frame) => this.#toOrg(orgId, frame));
    if (user || org) {
      if (!paused) ws.pause?.();
      paused = true;
      const [u, o] = await Promise.allSettled([user, org]);
      if (u.status === 'rejected' || o.status === 'rejected') {
        // Not served (the caller closes the socket): the subscription that was made is given back.
        if (u.status === 'fulfilled') this.#shared.release(userTopic);
        if (o.status === 'fulfilled') this.#shared.release(orgTopic);
        throw u.status === 'rejected' ? u.reason : (o as PromiseRejectedResult).reason;
      }
    }
    if (conn.closed) {
      // Gone while the subscriptions were made: #cleanup could not count it out yet.
      this.#shared.release(userTopic);
      this.#shared.release(orgTopic);
      return;
    }
    conn.joined = true;
    addTo(this.#byUser, userId, conn);
    addTo(this.#byOrg, orgId, conn);
    // (Written out as a template literal it cost ~5 µs less per connect, but each idle connection
    // then held 0.4 KB more after a full GC: 3.3 → 3.7 KB, memory benchmark.)
    conn.send(envelope('hello', { connection_id: conn.id, user_id: userId, heartbeat_ms: this.config.heartbeatMs }, this.#now()));
    if (paused) ws.resume?.();
    await this.deps.presence.connected(principal, conn.id).catch((err: unknown) => this.deps.log.warn({ err: String(err) }, 'presence: connect failed'));
  }

  #refuse(ws: WebSocket, paused: boolean, code: number, reason: 'rate_limited' | 'unauthorized', text: string): void {
    this.metrics.rejected.inc({ reason });
    // Reading again, so that the client's answer to the close frame is seen and the socket ends now.
    if (paused) ws.resume?.();
    ws.close(code, text);
  }

  async #cleanup(conn: Connection): Promise<void> {
    if (conn.closed) return;
    conn.closed = true;
    this.connections.delete(conn);
    this.#slices[conn.slice]?.delete(conn);
    this.#toFlush.delete(conn);
    this.metrics.connections.dec();
    if (conn.joined) {
      conn.joined = false;
      removeFrom(this.#byUser, conn.userId, conn);
      removeFrom(this.#byOrg, conn.principal.orgId, conn);
      this.#shared.release(topics.user(conn.userId));
      this.#shared.release(topics.org(conn.principal.orgId));
    }
    for (const id of [...conn.subs.keys()]) this.#unsubscribe(conn, id);
    await this.deps.presence.disconnected(conn.principal, conn.id).catch((err: unknown) => this.deps.log.warn({ err: String(err) }, 'presence: disconnect failed'));
  }

  /** A socket closed (any reason). */
  onClosed(conn: Connection): void {
    void this.#cleanup(conn);
  }

  scheduleFlush(conn: Connection): void {
    this.#toFlush.add(conn);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      for (const c of this.#toFlush) c.flush();
      this.#toFlush.clear();
    });
  }

  /** A client that does not read: its backlog is dropped with the connection (it is not reading a close frame either). */
  dropSlow(conn: Connection): void {
    if (conn.closed) return;
    this.metrics.slowClients.inc();
    conn.ws.terminate();
    void this.#cleanup(conn);
  }

  /**
   * Heartbeat: ping every socket of the next group, PINGS_PER_TURN per event-loop turn; one that did
   * not answer the previous ping is gone. Also idle → away.
   */
  async #tick(): Promise<void> {
    // Ticks do not wait for one another: each visits its own group, and one held up (a presence
    // store that does not answer) must not stop the heartbeat of the others.
    const now = this.deps.clock.now();
    const slice = [...this.#slices[this.#nextSlice]!];
    this.#nextSlice = (this.#nextSlice + 1) % HEARTBEAT_SLICES;
    await forEachInTurns(slice, PINGS_PER_TURN, async (c) => {
      if (c.closed) return;
      if (!c.alive) {
        c.ws.close(CLOSE.timeout, 'heartbeat timeout');
        c.ws.terminate();
        void this.#cleanup(c);
        return;
      }
      c.alive = false;
      c.ws.ping();
      const idle = now - c.lastActivity > this.config.idleAfterMs;
      if (idle !== c.idle) {
        c.idle = idle;
        await this.deps.presence.activity(c.principal, c.id, idle).catch(() => undefined);
      }
    });
    const live = slice.filter((c) => !c.closed);
    if (live.length) await this.deps.presence.heartbeat(live.map((c) => ({ userId: c.userId, connId: c.id, idle: c.idle }))).catch(() => undefined);
  }

  // ------------------------------------------------------------------ client messages

  async onMessage(conn: Connection, text: string | null): Promise<void> {
    const { max, windowMs } = this.config.messageLimit;
    if (max > 0) {
      const w = this.deps.limiter.hitNow ? this.deps.limiter.hitNow(`ws:msg:${conn.id}`, windowMs) : await this.deps.limiter.hit(`ws:msg:${conn.id}`, windowMs);
      if (w.count > max) return conn.ws.close(CLOSE.tooMany, 'too many messages');
    }
    conn.alive = true;
    conn.lastActivity = this.deps.clock.now();
    if (conn.idle) {
      conn.idle = false;
      void this.deps.presence.activity(conn.principal, conn.id, false).catch(() => undefined);
    }
    const parsed = parseClientMessage(text);
    if ('error' in parsed) return conn.send(envelope('error', { code: 'validation.failed', message: parsed.error }, this.#now(), undefined, undefined, parsed.id));
    const msg = parsed.message;
    const channelId = 'channel_id' in msg ? msg.channel_id : undefined;
    try {
      const payload = await this.#handle(conn, msg);
      if (payload !== undefined) conn.send(envelope('ack', payload, this.#now(), channelId, undefined, msg.id));
    } catch (err) {
      const e = err instanceof AppError ? { code: err.code, message: err.message } : { code: 'internal', message: 'Something went wrong' };
      if (!(err instanceof AppError)) this.deps.log.warn({ err: String(err) }, 'realtime: message failed');
      conn.send(envelope('error', e, this.#now(), channelId, undefined, msg.id));
    }
  }

  /** Handles one client message; the returned payload is acknowledged (undefined: no ack). */
  async #handle(conn: Connection, msg: ClientMessage): Promise<unknown> {
    switch (msg.type) {
      case 'ping':
        conn.send(envelope('pong', {}, this.#now(), undefined, undefined, msg.id));
        return undefined;
      case 'subscribe':
        return this.#subscribe(conn, msg.channel_id, msg.since_seq);
      case 'unsubscribe':
        this.#unsubscribe(conn, msg.channel_id);
        return { channel_id: msg.channel_id };
      case 'typing':
        await this.#typing(conn, msg.channel_id);
        return undefined;
      case 'send_message': {
        const { message, replayed } = await this.deps.messages.send(conn.principal, msg.channel_id, msg.payload);
        return { message, replayed };
      }
      case 'mark_read':
        return this.deps.readState.markRead(conn.principal, msg.channel_id, msg.payload?.message_id);
    }
  }

  // ------------------------------------------------------------------ subscriptions

  /**
   * Subscribe (access checked). With `since_seq`, everything that changed after it is replayed from
   * the database first — or `resync_required` when more changed than the resume limit — then live
   * events follow with no gap and no duplicate: they are buffered from before the database read.
   */
  async #subscribe(conn: Connection, conversationId: string, sinceSeq: number | undefined): Promise<unknown> {
    const c = await this.deps.conversations.requireConversation(conn.principal, conversationId, 'read');
    if (conn.subs.has(conversationId)) this.#unsubscribe(conn, conversationId);
    const feed = await this.#feed(conversationId, c.org_id);
    const staff = c.kind !== 'support' || checkAccess(conn.principal, 'support.handle');
    const sub: Subscription = {
      conversationId,
      staff,
      // 0 while the database is read: the feed hands everything to the buffer, which is then
      // filtered against the version read (events committed after the read must not be lost).
      from: 0,
      buffer: [],
      deliver: (frame, seq, staffOnly) => {
        if (sub.buffer) sub.buffer.push({ frame, seq, staffOnly });
        else if (!staffOnly || sub.staff) conn.send(frame);
      },
    };
    conn.setSub(conversationId, sub);
    feed.feed.subscribers.add(sub);
    let from: number;
    let replayed = 0;
    let resync = false;
    if (sinceSeq === undefined) {
      from = (await this.deps.messages.changesSince(conn.principal.orgId, conversationId, Number.MAX_SAFE_INTEGER, 0)).version;
    } else {
      const r = await this.deps.messages.changesSince(conn.principal.orgId, conversationId, sinceSeq, this.config.resumeLimit, !staff);
      from = r.version;
      if (r.tooMany) {
        resync = true;
        this.metrics.resyncs.inc();
        conn.send(envelope('resync_required', { channel_id: conversationId, seq: r.version, reason: `more than ${this.config.resumeLimit} messages changed` }, this.#now(), conversationId));
      } else {
        for (const ch of r.changes) {
          const json = ch.deleted
            ? envelope('message_delete', { id: JSON.parse(ch.json).id, conversation_id: conversationId, replayed: true }, this.#now(), conversationId, ch.version_seq)
            : `{"type":"message","channel_id":${JSON.stringify(conversationId)},"payload":${ch.json},"timestamp":"${this.#now()}","seq":${ch.version_seq},"replayed":true}`;
          conn.send(json);
        }
        replayed = r.changes.length;
        if (replayed) this.metrics.replays.inc(replayed);
      }
    }
    feed.feed.start(from);
    if (!conn.subs.has(conversationId) || conn.subs.get(conversationId) !== sub) return undefined;
    sub.from = from;
    const waiting = sub.buffer ?? [];
    sub.buffer = null;
    for (const e of waiting) {
      if (e.seq !== undefined) {
        if (e.seq <= sub.from) continue;
        sub.from = e.seq;
      }
      if (!e.staffOnly || sub.staff) conn.send(e.frame);
    }
    return { channel_id: conversationId, seq: sub.from, replayed, resync_required: resync };
  }

  #unsubscribe(conn: Connection, conversationId: string): void {
    const sub = conn.subs.get(conversationId);
    if (!sub) return;
    conn.deleteSub(conversationId);
    const entry = this.#feeds.get(conversationId);
    if (!entry) return;
    entry.feed.subscribers.delete(sub);
    if (entry.feed.subscribers.size === 0) {
      this.#feeds.delete(conversationId);
      entry.feed.stop();
      void entry.unsubscribe.then((u) => u());
    }
  }

  async #feed(conversationId: string, orgId: string) {
    let entry = this.#feeds.get(conversationId);
    if (entry) {
      await entry.unsubscribe;
      return entry;
    }
    const feed = new ConversationFeed(
      async (since) => {
        const r = await this.deps.messages.changesSince(orgId, conversationId, since, this.config.resumeLimit);
        if (r.tooMany) {
          // Too far behind (e.g. the bus was down for long): subscribers must refetch.
          this.metrics.resyncs.inc();
          return { version: r.version, events: [{ seq: r.version, json: envelope('resync_required', { channel_id: conversationId, seq: r.version }, this.#now(), conversationId, r.version) }] };
        }
        this.metrics.replays.inc(r.changes.length);
        return {
          version: r.version,
          events: r.changes.map((ch) => ({
            seq: ch.version_seq,
            staffOnly: ch.private,
            json: ch.deleted
              ? envelope('message_delete', { id: JSON.parse(ch.json).id, conversation_id: conversationId, replayed: true }, this.#now(), conversationId, ch.version_seq)
              : `{"type":"message","channel_id":${JSON.stringify(conversationId)},"payload":${ch.json},"timestamp":"${this.#now()}","seq":${ch.version_seq},"replayed":true}`,
          })),
        };
      },
      { gapWaitMs: this.config.gapWaitMs, chunk: this.config.fanoutChunk, onError: (err) => this.deps.log.warn({ err: String(err) }, 'realtime: gap fill failed') },
    );
    const unsubscribe = this.deps.bus.subscribe(topics.conversation(conversationId), (frame) => {
      const { seq, json, staffOnly } = parseFrame(frame);
      feed.onEvent(seq, json, staffOnly);
    });
    entry = { feed, unsubscribe };
    this.#feeds.set(conversationId, entry);
    await unsubscribe;
    return entry;
  }

  /** Typing: members only, at most one event per user and conversation per throttle window; clients expire it. */
  async #typing(conn: Connection, conversationId: string): Promise<void> {
    const key = `${conn.userId}:${conversationId}`;
    const now = this.deps.clock.now();
    const last = this.#typingSent.get(key);
    if (last !== undefined && now - last < this.config.typingThrottleMs) return;
    // Taken before the access check, so two typing frames in a row cannot both pass.
    this.#typingSent.set(key, now);
    try {
      await this.deps.conversations.requireConversation(conn.principal, conversationId, 'write');
    } catch (err) {
      this.#typingSent.delete(key);
      throw err;
    }
    if (this.#typingSent.size > 10_000) for (const [k, t] of this.#typingSent) if (now - t >= this.config.typingThrottleMs) this.#typingSent.delete(k);
    this.deps.publisher.toConversation(conversationId, 'typing', { user_id: conn.userId, expires_in_ms: this.config.typingTtlMs });
  }

  // ------------------------------------------------------------------ personal topic, invalidations

  #toUser(userId: string, frame: string): void {
    const set = this.#byUser.get(userId);
    if (!set) return;
    const { json } = parseFrame(frame);
    const bytes = set.size > 1 ? Buffer.from(json) : null;
    for (const c of set) this.#onPersonal(c, json, bytes);
  }

  #toOrg(orgId: string, frame: string): void {
    const set = this.#byOrg.get(orgId);
    if (!set) return;
    const { json } = parseFrame(frame);
    // Encoded once for the whole organization (presence goes to every socket of it).
    const data = set.size > 1 ? Buffer.from(json) : json;
    for (const c of set) c.send(data);
  }

  #onPersonal(conn: Connection, json: string, bytes: Buffer | null): void {
    // A direct or group message also comes on the personal topic: skip it when subscribed to the conversation.
    if (json.startsWith('{"type":"message",')) {
      const channel = /^\{"type":"message","channel_id":"([^"]+)"/.exec(json)?.[1];
      if (channel && conn.subs.has(channel)) return;
    }
    if (json.startsWith('{"type":"membership",')) {
      const e = JSON.parse(json) as { channel_id?: string; payload: { action: string } };
      if (e.payload.action === 'removed' && e.channel_id) {
        this.#unsubscribe(conn, e.channel_id);
      }
    }
    conn.send(bytes ?? json);
  }

  /** Sessions ended, users changed: re-check the credentials of matching sockets; failures are closed with 4401. */
  #onInvalidation(payload: string): void {
    let sel: Invalidation;
    try {
      sel = JSON.parse(payload) as Invalidation;
    } catch {
      return;
    }
    const matching = [...this.connections].filter(
      (c) =>
        (sel.orgId !== undefined && c.principal.orgId === sel.orgId) ||
        (sel.userId !== undefined && c.principal.userId === sel.userId) ||
        (sel.sessionId !== undefined && c.principal.sessionId === sel.sessionId) ||
        (sel.apiKeyId !== undefined && c.principal.apiKeyId === sel.apiKeyId),
    );
    if (matching.length === 0) return;
    // After every other handler of this message (the principal cache drops its entries first).
    setImmediate(() => {
      for (const c of matching) {
        this.deps.authenticator.authenticate(c.credentials).then(
          (p) => {
            const statusChanged = p.user?.status !== c.principal.user?.status;
            c.principal = p;
            // A status the user chose (PUT /users/status: away, dnd) is presence news.
            if (statusChanged) void this.deps.presence.activity(p, c.id, c.idle).catch(() => undefined);
          },
          () => {
            c.ws.close(CLOSE.unauthorized, 'session ended');
            void this.#cleanup(c);
          },
        );
      }
    });
  }

  #now(): string {
    return isoNow(this.deps.clock);
  }
}

const CONNECTION = Symbol('parley.connection');
type SocketWithConnection = WebSocket & { [CONNECTION]: Connection };

function onSocketMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  const conn = (this as SocketWithConnection)[CONNECTION];
  void conn.gateway.onMessage(conn, isBinary ? null : data.toString());
}

function onSocketPong(this: WebSocket): void {
  (this as SocketWithConnection)[CONNECTION].alive = true;
}

function onSocketClose(this: WebSocket): void {
  const conn = (this as SocketWithConnection)[CONNECTION];
  conn.gateway.onClosed(conn);
}

function onSocketError(this: WebSocket): void {
  this.terminate();
}

function addTo<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(value);
}

function removeFrom<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}
