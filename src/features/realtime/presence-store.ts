import type { Redis } from 'ioredis';

/**
 * Who is connected, across every node: one entry per live connection (user, connection id, idle
 * or active), each with an expiry that the owning node refreshes. A node that dies stops
 * refreshing, and its connections drop out after the TTL. The memory store serves one process;
 * the Redis store a cluster. One contract suite runs over both (presence-store.contract.ts).
 */
export interface PresenceStore {
  /** Record a connection (active); returns the user's live counts afterwards. */
  connect(userId: string, connId: string): Promise<LiveCount>;
  /** Forget a connection; returns the user's live counts afterwards. */
  disconnect(userId: string, connId: string): Promise<LiveCount>;
  /** Mark a connection idle or active (and refresh it); returns the user's live counts afterwards. */
  setIdle(userId: string, connId: string, idle: boolean): Promise<LiveCount>;
  /** Refresh the expiry of these connections (the node's heartbeat). */
  refresh(entries: Array<{ userId: string; connId: string; idle: boolean }>): Promise<void>;
  /** Per user: live connections, and how many of them are active (not idle). Unknown users: 0, 0. */
  get(userIds: string[]): Promise<Map<string, LiveCount>>;
  close(): Promise<void>;
}

/**
 * A user's live connections, and how many of them are active (not idle). Every change returns
 * them, read in the same step (one Redis script), so a caller needs no second round trip.
 */
export interface LiveCount {
  connections: number;
  active: number;
}

interface Conn {
  idle: boolean;
  expiresAt: number;
}

/** One user's connections, with the count of active ones kept as they change (no walk per call). */
interface UserConns {
  conns: Map<string, Conn>;
  active: number;
  /** No connection expires before this (may be early after refreshes: then a walk corrects it). */
  nextExpiry: number;
}

export class MemoryPresenceStore implements PresenceStore {
  readonly #users = new Map<string, UserConns>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async connect(userId: string, connId: string): Promise<LiveCount> {
    this.#put(userId, connId, false);
    return this.#live(userId);
  }

  async disconnect(userId: string, connId: string): Promise<LiveCount> {
    const u = this.#users.get(userId);
    const c = u?.conns.get(connId);
    if (u && c) {
      u.conns.delete(connId);
      if (!c.idle) u.active -= 1;
    }
    return this.#live(userId);
  }

  async setIdle(userId: string, connId: string, idle: boolean): Promise<LiveCount> {
    if (this.#users.get(userId)?.conns.has(connId)) this.#put(userId, connId, idle);
    return this.#live(userId);
  }

  async refresh(entries: Array<{ userId: string; connId: string; idle: boolean }>): Promise<void> {
    for (const e of entries) this.#put(e.userId, e.connId, e.idle);
  }

  async get(userIds: string[]): Promise<Map<string, LiveCount>> {
    return new Map(userIds.map((u) => [u, this.#live(u)]));
  }

  async close(): Promise<void> {
    this.#users.clear();
  }

  #put(userId: string, connId: string, idle: boolean): void {
    let u = this.#users.get(userId);
    if (!u) this.#users.set(userId, (u = { conns: new Map(), active: 0, nextExpiry: Infinity }));
    const expiresAt = this.now() + this.ttlMs;
    const c = u.conns.get(connId);
    if (c) {
      if (c.idle !== idle) u.active += idle ? -1 : 1;
      c.idle = idle;
      c.expiresAt = expiresAt;
    } else {
      u.conns.set(connId, { idle, expiresAt });
      if (!idle) u.active += 1;
    }
    if (expiresAt < u.nextExpiry) u.nextExpiry = expiresAt;
  }

  #live(userId: string): LiveCount {
    const u = this.#users.get(userId);
    if (!u) return { connections: 0, active: 0 };
    const now = this.now();
    if (u.nextExpiry <= now) {
      let next = Infinity;
      for (const [id, c] of u.conns) {
        if (c.expiresAt <= now) {
          u.conns.delete(id);
          if (!c.idle) u.active -= 1;
        } else if (c.expiresAt < next) next = c.expiresAt;
      }
      u.nextExpiry = next;
    }
    if (u.conns.size === 0) {
      this.#users.delete(userId);
      return { connections: 0, active: 0 };
    }
    return { connections: u.conns.size, active: u.active };
  }
}

/**
 * Redis: a hash per user, `<prefix>presence:<user>`, field = connection id, value =
 * `<expires at ms>:<1 idle | 0 active>`. Every operation prunes expired fields in the same Lua
 * script, so counts never include a dead node's connections past their TTL, and the key itself
 * expires when nothing refreshes it.
 */
const PRUNE_AND_COUNT = `
local now = tonumber(ARGV[1])
local fields = redis.call('HGETALL', KEYS[1])
local n, active = 0, 0
for i = 1, #fields, 2 do
  local v = fields[i + 1]
  local sep = string.find(v, ':')
  if tonumber(string.sub(v, 1, sep - 1)) <= now then
    redis.call('HDEL', KEYS[1], fields[i])
  else
    n = n + 1
    if string.sub(v, sep + 1) == '0' then active = active + 1 end
  end
end
return {n, active}`;

const SET_AND_COUNT = `
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
${PRUNE_AND_COUNT}`;

// Idle/active of a connection this store knows; an unknown one (already disconnected) stays unknown.
const SET_IF_KNOWN_AND_COUNT = `
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
${PRUNE_AND_COUNT}`;

const DEL_AND_COUNT = `
redis.call('HDEL', KEYS[1], ARGV[2])
${PRUNE_AND_COUNT}`;

export class RedisPresenceStore implements PresenceStore {
  constructor(
    private readonly redis: Redis,
    private readonly ttlMs: number,
    private readonly prefix = 'parley:',
    private readonly now: () => number = Date.now,
  ) {}

  async connect(userId: string, connId: string): Promise<LiveCount> {
    return this.#set(SET_AND_COUNT, userId, connId, false);
  }

  async disconnect(userId: string, connId: string): Promise<LiveCount> {
    return counted(await this.redis.eval(DEL_AND_COUNT, 1, this.#key(userId), this.now(), connId));
  }

  async setIdle(userId: string, connId: string, idle: boolean): Promise<LiveCount> {
    return this.#set(SET_IF_KNOWN_AND_COUNT, userId, connId, idle);
  }

  async refresh(entries: Array<{ userId: string; connId: string; idle: boolean }>): Promise<void> {
    if (entries.length === 0) return;
    const pipe = this.redis.pipeline();
    const expires = this.now() + this.ttlMs;
    for (const e of entries) {
      pipe.hset(this.#key(e.userId), e.connId, `${expires}:${e.idle ? 1 : 0}`);
      pipe.pexpire(this.#key(e.userId), this.ttlMs);
    }
    await pipe.exec();
  }

  async get(userIds: string[]): Promise<Map<string, LiveCount>> {
    const out = new Map<string, LiveCount>();
    if (userIds.length === 0) return out;
    const pipe = this.redis.pipeline();
    for (const u of userIds) pipe.eval(PRUNE_AND_COUNT, 1, this.#key(u), this.now());
    const res = (await pipe.exec()) ?? [];
    userIds.forEach((u, i) => {
      const [err, v] = res[i] ?? [null, [0, 0]];
      if (err) throw err;
      out.set(u, counted(v));
    });
    return out;
  }

  async close(): Promise<void> {
    /* the Redis connection belongs to the app */
  }

  async #set(script: string, userId: string, connId: string, idle: boolean): Promise<LiveCount> {
    const now = this.now();
    return counted(await this.redis.eval(script, 1, this.#key(userId), now, connId, `${now + this.ttlMs}:${idle ? 1 : 0}`, this.ttlMs));
  }

  #key(userId: string): string {
    return `${this.prefix}presence:${userId}`;
  }
}

/** The `{n, active}` a presence script returns. */
function counted(reply: unknown): LiveCount {
  const [connections, active] = reply as [number, number];
  return { connections, active };
}
