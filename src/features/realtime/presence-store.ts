import type { Redis } from 'ioredis';

/**
 * Who is connected, across every node: one entry per live connection (user, connection id, idle
 * or active), each with an expiry that the owning node refreshes. A node that dies stops
 * refreshing, and its connections drop out after the TTL. The memory store serves one process;
 * the Redis store a cluster. One contract suite runs over both (presence-store.contract.ts).
 */
export interface PresenceStore {
  /** Record a connection (active); returns the user's live connection count afterwards. */
  connect(userId: string, connId: string): Promise<number>;
  /** Forget a connection; returns the user's live connection count afterwards. */
  disconnect(userId: string, connId: string): Promise<number>;
  /** Mark a connection idle or active (and refresh it). */
  setIdle(userId: string, connId: string, idle: boolean): Promise<void>;
  /** Refresh the expiry of these connections (the node's heartbeat). */
  refresh(entries: Array<{ userId: string; connId: string; idle: boolean }>): Promise<void>;
  /** Per user: live connections, and how many of them are active (not idle). Unknown users: 0, 0. */
  get(userIds: string[]): Promise<Map<string, { connections: number; active: number }>>;
  close(): Promise<void>;
}

interface Conn {
  idle: boolean;
  expiresAt: number;
}

export class MemoryPresenceStore implements PresenceStore {
  readonly #users = new Map<string, Map<string, Conn>>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async connect(userId: string, connId: string): Promise<number> {
    let conns = this.#users.get(userId);
    if (!conns) this.#users.set(userId, (conns = new Map()));
    conns.set(connId, { idle: false, expiresAt: this.now() + this.ttlMs });
    return this.#live(userId).connections;
  }

  async disconnect(userId: string, connId: string): Promise<number> {
    this.#users.get(userId)?.delete(connId);
    return this.#live(userId).connections;
  }

  async setIdle(userId: string, connId: string, idle: boolean): Promise<void> {
    const c = this.#users.get(userId)?.get(connId);
    if (c) Object.assign(c, { idle, expiresAt: this.now() + this.ttlMs });
  }

  async refresh(entries: Array<{ userId: string; connId: string; idle: boolean }>): Promise<void> {
    for (const e of entries) {
      let conns = this.#users.get(e.userId);
      if (!conns) this.#users.set(e.userId, (conns = new Map()));
      conns.set(e.connId, { idle: e.idle, expiresAt: this.now() + this.ttlMs });
    }
  }

  async get(userIds: string[]): Promise<Map<string, { connections: number; active: number }>> {
    return new Map(userIds.map((u) => [u, this.#live(u)]));
  }

  async close(): Promise<void> {
    this.#users.clear();
  }

  #live(userId: string): { connections: number; active: number } {
    const conns = this.#users.get(userId);
    if (!conns) return { connections: 0, active: 0 };
    const now = this.now();
    let active = 0;
    for (const [id, c] of conns) {
      if (c.expiresAt <= now) conns.delete(id);
      else if (!c.idle) active += 1;
    }
    if (conns.size === 0) this.#users.delete(userId);
    return { connections: conns.size, active };
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
const SET_IF_KNOWN = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 0`;

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

  async connect(userId: string, connId: string): Promise<number> {
    return (await this.#set(userId, connId, false))[0];
  }

  async disconnect(userId: string, connId: string): Promise<number> {
    const [n] = (await this.redis.eval(DEL_AND_COUNT, 1, this.#key(userId), this.now(), connId)) as [number, number];
    return n;
  }

  async setIdle(userId: string, connId: string, idle: boolean): Promise<void> {
    await this.redis.eval(SET_IF_KNOWN, 1, this.#key(userId), connId, `${this.now() + this.ttlMs}:${idle ? 1 : 0}`, this.ttlMs);
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

  async get(userIds: string[]): Promise<Map<string, { connections: number; active: number }>> {
    const out = new Map<string, { connections: number; active: number }>();
    if (userIds.length === 0) return out;
    const pipe = this.redis.pipeline();
    for (const u of userIds) pipe.eval(PRUNE_AND_COUNT, 1, this.#key(u), this.now());
    const res = (await pipe.exec()) ?? [];
    userIds.forEach((u, i) => {
      const [err, v] = res[i] ?? [null, [0, 0]];
      if (err) throw err;
      const [connections, active] = v as [number, number];
      out.set(u, { connections, active });
    });
    return out;
  }

  async close(): Promise<void> {
    /* the Redis connection belongs to the app */
  }

  async #set(userId: string, connId: string, idle: boolean): Promise<[number, number]> {
    const now = this.now();
    return (await this.redis.eval(SET_AND_COUNT, 1, this.#key(userId), now, connId, `${now + this.ttlMs}:${idle ? 1 : 0}`, this.ttlMs)) as [number, number];
  }

  #key(userId: string): string {
    return `${this.prefix}presence:${userId}`;
  }
}
