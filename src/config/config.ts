import { isAbsolute, resolve } from 'node:path';

/**
 * Configuration: read from the environment once at start, validated, typed and frozen.
 * Every bad value produces its own line in one ConfigError. Seed-compatible aliases are accepted
 * (the first name listed wins when both are set).
 */
export type NodeEnv = 'development' | 'production' | 'test';

export interface HostJwtConfig {
  /** Shared HS256 secret of the host application, if any. */
  secret: string | null;
  /** JWKS URL for RS256 / ES256 host tokens, if any. */
  jwksUrl: string | null;
  issuer: string | null;
  audience: string | null;
  claims: { subject: string; name: string; email: string; role: string; organization: string; username: string };
  /** Organization slug used when the token has no organization claim. */
  defaultOrganization: string | null;
  /** Role given to a user first seen without a role claim. */
  defaultRole: string;
}

/** Where uploaded files are kept. */
export interface FileStorageConfig {
  /** local: a folder under DATA_DIR (single node); s3: an S3 bucket (AWS or S3-compatible). */
  kind: 'local' | 's3';
  /** Largest upload accepted, in bytes. */
  uploadMaxBytes: number;
  /** Set when kind is s3. */
  s3: {
    bucket: string;
    region: string;
    endpoint: string | null;
    forcePathStyle: boolean;
    credentials: { accessKeyId: string; secretAccessKey: string } | null;
  } | null;
}

export interface RealtimeConfig {
  allowedOrigins: string[] | '*';
  heartbeatMs: number;
  maxFrameBytes: number;
  maxBufferedBytes: number;
  resumeLimit: number;
  connectLimit: { max: number; windowMs: number };
  messageLimit: { max: number; windowMs: number };
  typingThrottleMs: number;
  typingTtlMs: number;
  idleAfterMs: number;
  presenceTtlMs: number;
  gapWaitMs: number;
  fanoutChunk: number;
}

export interface Config {
  nodeEnv: NodeEnv;
  port: number;
  host: string;
  /** Pending connections the kernel queues for the HTTP/WebSocket listener (capped by net.core.somaxconn). */
  listenBacklog: number;
  publicUrl: string;
  dataDir: string;
  databaseUrl: string;
  /** PostgreSQL: statements as named prepared statements (off behind a pooler that cannot keep them). */
  databasePreparedStatements: boolean;
  redisUrl: string | null;
  /** null means: generate one in the data folder (development and test only). */
  jwtSecret: string | null;
  accessTokenTtlSeconds: number;
  /** How long a resolved principal may be reused before credentials are checked again (0 = never). */
  authCacheTtlMs: number;
  refreshTokenTtlSeconds: number;
  corsEnabled: boolean;
  corsAllowedOrigins: string[];
  logLevel: string;
  metricsEnabled: boolean;
  metricsPort: number;
  metricsHost: string;
  bodyLimitBytes: number;
  trustProxy: string[] | false;
  rateLimit: { max: number; windowMs: number };
  loginLimit: { perAccount: number; perIp: number; windowMs: number };
  /** Messages a user may send per window, across conversations (0 = no limit). */
  sendLimit: { max: number; windowMs: number };
  /** History pages kept in memory per process, reused until their conversation changes (0 = none). */
  historyCachePages: number;
  /** SQLite: how often new messages are moved into the search index (searches flush first anyway). */
  searchIndexIntervalMs: number;
  realtime: RealtimeConfig;
  /** Keys for secrets at rest, the first encrypts (empty: derived from the JWT secret). */
  encryptionKeys: Array<{ id: string; key: string }>;
  /** Where each platform's API is (tests point them at local fake servers). */
  platformApis: { whatsapp: string; telegram: string; meta: string; timeoutMs: number };
  defaultOrganization: { slug: string; name: string; registrationOpen: boolean };
  platformAdmin: { username: string; password: string; email: string | null } | null;
  seedDemo: boolean;
  hostJwt: HostJwtConfig;
  files: FileStorageConfig;
  integrations: IntegrationsConfig;
  /** Inbound media downloads from the platforms (connectors/media). */
  media: MediaConfig;
  /** The Chatwoot mirror / relay (features/relay). */
  relay: RelayConfig;
}

/** Calls to Chatwoot and downloads of its attachments (SECURITY.md class E). */
export interface RelayConfig {
  /** Allow Chatwoot on loopback and private addresses (a self-hosted Chatwoot on the same network). */
  allowPrivate: boolean;
  /** Deadline of one Chatwoot request. */
  timeoutMs: number;
}

/** How platform media is downloaded into file storage (SECURITY.md class E). */
export interface MediaConfig {
  /** Allow loopback and private addresses (tests with a local fake platform; never in production). */
  allowPrivate: boolean;
  /** Ceiling on a downloaded media file, in bytes (default: UPLOAD_MAX_BYTES); each platform's own limit applies under it (fetch-media.ts mediaMaxBytes). */
  maxBytes: number;
  /** Deadline of one download attempt, every request of it included. */
  timeoutMs: number;
}

/** The outbox dispatcher, integration events on Redis and outgoing webhooks (docs/events.md). */
export interface IntegrationsConfig {
  /** Publish integration events on Redis Pub/Sub (NestJS transport format); needs REDIS_URL. */
  redisEvents: boolean;
  /** A publish heard by fewer subscribers than this counts as failed and is retried (0: any). */
  redisMinSubscribers: number;
  outbox: {
    /** Run the dispatcher in this process (several processes may; claims never overlap). */
    dispatcher: boolean;
    pollMs: number;
    /** Deliveries in flight at once, per process. */
    concurrency: number;
    /** Attempts before a row is marked failed. */
    maxAttempts: number;
    /** Backoff: base × 2^(attempt − 1), capped, with jitter. */
    retryBaseMs: number;
    retryMaxMs: number;
    /** How long a claimed row stays reserved for its dispatcher (must outlast one attempt). */
    lockMs: number;
  };
  webhooks: {
    timeoutMs: number;
    /** Allow endpoints on loopback and private addresses (tests, trusted intranets). */
    allowPrivate: boolean;
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  /** The first non-empty value among the names, with the name it came from. */
  raw(names: string[]): { name: string; value: string } | null {
    for (const name of names) {
      const value = this.env[name];
      if (value !== undefined && value.trim() !== '') return { name, value: value.trim() };
    }
    return null;
  }

  str(names: string[], fallback: string): string;
  str(names: string[], fallback: null): string | null;
  str(names: string[], fallback: string | null): string | null {
    return this.raw(names)?.value ?? fallback;
  }

  int(names: string[], fallback: number, min: number, max: number): number {
    const r = this.raw(names);
    if (!r) return fallback;
    const n = Number(r.value);
    if (!Number.isInteger(n) || n < min || n > max) {
      this.problems.push(`${r.name}: expected an integer from ${min} to ${max}, got "${r.value}"`);
      return fallback;
    }
    return n;
  }

  bool(names: string[], fallback: boolean): boolean {
    const r = this.raw(names);
    if (!r) return fallback;
    const v = r.value.toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    this.problems.push(`${r.name}: expected true or false, got "${r.value}"`);
    return fallback;
  }

  oneOf<T extends string>(names: string[], allowed: readonly T[], fallback: T, aliases: Record<string, T> = {}): T {
    const r = this.raw(names);
    if (!r) return fallback;
    const v = r.value.toLowerCase();
    const hit = (allowed as readonly string[]).includes(v) ? (v as T) : aliases[v];
    if (hit) return hit;
    this.problems.push(`${r.name}: expected one of ${allowed.join(', ')}, got "${r.value}"`);
    return fallback;
  }

  list(names: string[]): string[] {
    const r = this.raw(names);
    return r ? r.value.split(',').map((s) => s.trim()).filter(Boolean) : [];
  }

  url(names: string[], protocols: string[]): string | null {
    const r = this.raw(names);
    if (!r) return null;
    try {
      const u = new URL(r.value);
      if (!protocols.includes(u.protocol)) throw new Error('protocol');
      return r.value;
    } catch {
      this.problems.push(`${r.name}: expected a ${protocols.join(' or ')} URL, got "${r.value}"`);
      return null;
    }
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const ROLE_RE = /^[a-z][a-z0-9_-]{0,31}$/;
const SLUG_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

function readDatabaseUrl(r: Reader, dataDir: string): string {
  const raw = r.raw(['DATABASE_URL', 'DB_URL']);
  if (!raw) return resolve(dataDir, 'parley.db');
  const v = raw.value;
  if (/^postgres(ql)?:\/\//.test(v)) return r.url([raw.name], ['postgres:', 'postgresql:']) ?? v;
  if (v === ':memory:') return v;
  if (/^(file|sqlite):/.test(v)) {
    const path = v.replace(/^(file|sqlite):(\/\/)?/, '');
    return path === ':memory:' ? path : resolve(path);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) {
    r.problems.push(`${raw.name}: expected a SQLite path, a file: URL or a postgres:// URL, got "${v}"`);
    return resolve(dataDir, 'parley.db');
  }
  return isAbsolute(v) ? v : resolve(v);
}

function readRedisUrl(r: Reader): string | null {
  const url = r.url(['REDIS_URL'], ['redis:', 'rediss:']);
  if (url) return url;
  const addr = r.raw(['REDIS_ADDR']);
  if (!addr) return null;
  if (!/^[^\s:/]+:\d{1,5}$/.test(addr.value)) {
    r.problems.push(`REDIS_ADDR: expected host:port, got "${addr.value}"`);
    return null;
  }
  const password = r.str(['REDIS_PASSWORD'], null);
  return `redis://${password ? `:${encodeURIComponent(password)}@` : ''}${addr.value}`;
}

function readHostJwt(r: Reader): HostJwtConfig {
  const defaultRole = r.str(['HOST_JWT_DEFAULT_ROLE'], 'member');
  if (!ROLE_RE.test(defaultRole)) r.problems.push(`HOST_JWT_DEFAULT_ROLE: "${defaultRole}" is not a valid role name`);
  const secret = r.str(['HOST_JWT_SECRET'], null);
  if (secret !== null && secret.length < 32) r.problems.push('HOST_JWT_SECRET: must be at least 32 characters');
  return {
    secret,
    jwksUrl: r.url(['HOST_JWT_JWKS_URL'], ['http:', 'https:']),
    issuer: r.str(['HOST_JWT_ISSUER'], null),
    audience: r.str(['HOST_JWT_AUDIENCE'], null),
    claims: {
      subject: r.str(['HOST_JWT_CLAIM_SUBJECT'], 'sub'),
      name: r.str(['HOST_JWT_CLAIM_NAME'], 'name'),
      email: r.str(['HOST_JWT_CLAIM_EMAIL'], 'email'),
      role: r.str(['HOST_JWT_CLAIM_ROLE'], 'role'),
      organization: r.str(['HOST_JWT_CLAIM_ORGANIZATION'], 'org'),
      username: r.str(['HOST_JWT_CLAIM_USERNAME'], 'preferred_username'),
    },
    defaultOrganization: r.str(['HOST_JWT_DEFAULT_ORGANIZATION'], null),
    defaultRole,
  };
}

function readFileStorage(r: Reader): FileStorageConfig {
  const kind = r.oneOf(['FILE_STORAGE'], ['local', 's3'] as const, 'local');
  const uploadMaxBytes = r.int(['UPLOAD_MAX_BYTES'], 25 * 1024 * 1024, 1, 5 * 1024 * 1024 * 1024);
  if (kind !== 's3') return { kind, uploadMaxBytes, s3: null };
  const bucket = r.str(['S3_BUCKET', 'CHAT_BUCKET'], null);
  if (bucket === null) r.problems.push('S3_BUCKET: required when FILE_STORAGE=s3');
  else if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) r.problems.push(`S3_BUCKET: "${bucket}" is not a valid bucket name`);
  const accessKeyId = r.str(['S3_ACCESS_KEY'], null);
  const secretAccessKey = r.str(['S3_SECRET_KEY'], null);
  if ((accessKeyId === null) !== (secretAccessKey === null)) r.problems.push('S3_ACCESS_KEY and S3_SECRET_KEY: set both or neither (neither: the AWS default credential chain)');
  const endpoint = r.url(['S3_ENDPOINT'], ['http:', 'https:']);
  return {
    kind,
    uploadMaxBytes,
    s3: {
      bucket: bucket ?? '',
      region: r.str(['S3_REGION'], 'us-east-1'),
      endpoint,
      // S3-compatible servers mostly need path-style URLs; AWS prefers virtual-hosted ones.
      forcePathStyle: r.bool(['S3_FORCE_PATH_STYLE'], endpoint !== null),
      credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : null,
    },
  };
}

function readIntegrations(r: Reader): IntegrationsConfig {
  // Redis is configured (readRedisUrl reports a bad value itself).
  const redisUrl = r.raw(['REDIS_URL', 'REDIS_ADDR'])?.value ?? null;
  const redisEvents = r.bool(['INTEGRATION_REDIS_EVENTS'], redisUrl !== null);
  if (redisEvents && redisUrl === null) r.problems.push('INTEGRATION_REDIS_EVENTS: needs REDIS_URL');
  const timeoutMs = r.int(['WEBHOOK_TIMEOUT_MS'], 10_000, 100, 120_000);
  const lockMs = r.int(['OUTBOX_LOCK_MS'], 60_000, 1000, 3_600_000);
  if (lockMs < timeoutMs + 5000) r.problems.push(`OUTBOX_LOCK_MS: must be at least WEBHOOK_TIMEOUT_MS + 5000 (${timeoutMs + 5000}), or a slow attempt could be claimed twice`);
  const retryBaseMs = r.int(['OUTBOX_RETRY_BASE_MS'], 1000, 1, 3_600_000);
  return {
    redisEvents: redisEvents && redisUrl !== null,
    redisMinSubscribers: r.int(['INTEGRATION_REDIS_MIN_SUBSCRIBERS'], 0, 0, 1_000_000),
    outbox: {
      dispatcher: r.bool(['OUTBOX_DISPATCHER'], true),
      pollMs: r.int(['OUTBOX_POLL_MS'], 1000, 10, 600_000),
      concurrency: r.int(['OUTBOX_CONCURRENCY'], 32, 1, 1000),
      maxAttempts: r.int(['OUTBOX_MAX_ATTEMPTS'], 20, 1, 1000),
      retryBaseMs,
      retryMaxMs: Math.max(retryBaseMs, r.int(['OUTBOX_RETRY_MAX_MS'], 3_600_000, 1, 7 * 86_400_000)),
      lockMs,
    },
    webhooks: { timeoutMs, allowPrivate: r.bool(['WEBHOOKS_ALLOW_PRIVATE'], false) },
  };
}

function readMedia(r: Reader, uploadMaxBytes: number, lockMs: number): MediaConfig {
  const timeoutMs = r.int(['MEDIA_TIMEOUT_MS'], 30_000, 100, 600_000);
  if (lockMs < timeoutMs + 5000) r.problems.push(`OUTBOX_LOCK_MS: must be at least MEDIA_TIMEOUT_MS + 5000 (${timeoutMs + 5000}), or a slow download could be claimed twice`);
  return {
    allowPrivate: r.bool(['MEDIA_ALLOW_PRIVATE'], false),
    maxBytes: r.int(['MEDIA_MAX_BYTES'], uploadMaxBytes, 1, 5 * 1024 * 1024 * 1024),
    timeoutMs,
  };
}

/** Parse and validate configuration from an environment object. Throws ConfigError listing every problem. */
export function loadConfig(env: Env = process.env): Readonly<Config> {
  const r = new Reader(env);
  const nodeEnv = r.oneOf(['NODE_ENV', 'SERVER_MODE'], ['development', 'production', 'test'] as const, 'development', {
    dev: 'development',
    prod: 'production',
    release: 'production',
    debug: 'development',
  });
  const port = r.int(['PORT', 'CHAT_PORT'], 8080, 0, 65535);
  const dataDir = resolve(r.str(['DATA_DIR'], './data'));
  const jwtSecret = r.str(['JWT_SECRET'], null);
  if (jwtSecret === null && nodeEnv === 'production') r.problems.push('JWT_SECRET: required when NODE_ENV=production');
  if (jwtSecret !== null && jwtSecret.length < 32) r.problems.push('JWT_SECRET: must be at least 32 characters');

  const corsEnabled = r.bool(['CORS_ENABLED'], true);
  const corsAllowedOrigins = r.list(['CORS_ALLOWED_ORIGINS']);
  const wsOrigins = r.list(['WS_ALLOWED_ORIGINS']);
  for (const o of corsAllowedOrigins) {
    if (o !== '*' && !/^https?:\/\/[^/\s]+$/.test(o)) r.problems.push(`CORS_ALLOWED_ORIGINS: "${o}" is not an origin like https://app.example.com`);
  }

  const encryptionKeys = r.list(['ENCRYPTION_KEYS']).map((entry) => {
    const [id, key] = entry.split(':', 2);
    if (!id || !key || !/^[A-Za-z0-9_-]+$/.test(id) || Buffer.from(key, 'base64').length !== 32) {
      r.problems.push(`ENCRYPTION_KEYS: "${id ?? entry}" must be <id>:<32 bytes in base64> (e.g. k1:$(openssl rand -base64 32))`);
    }
    return { id: id ?? '', key: key ?? '' };
  });

  const trust = r.list(['TRUST_PROXY']);
  const adminUser = r.str(['PLATFORM_ADMIN_USERNAME'], null);
  const adminPassword = r.str(['PLATFORM_ADMIN_PASSWORD'], null);
  if ((adminUser === null) !== (adminPassword === null)) {
    r.problems.push('PLATFORM_ADMIN_USERNAME and PLATFORM_ADMIN_PASSWORD: set both or neither');
  }
  if (adminPassword !== null && adminPassword.length < 8) r.problems.push('PLATFORM_ADMIN_PASSWORD: must be at least 8 characters');

  const defaultSlug = r.str(['DEFAULT_ORGANIZATION_SLUG'], 'default');
  if (!SLUG_RE.test(defaultSlug)) r.problems.push(`DEFAULT_ORGANIZATION_SLUG: "${defaultSlug}" is not a valid slug (a-z, 0-9, -)`);

  const config: Config = {
    nodeEnv,
    port,
    host: r.str(['HOST'], '0.0.0.0'),
    listenBacklog: r.int(['LISTEN_BACKLOG'], 4096, 1, 65_535),
    publicUrl: r.url(['PUBLIC_URL'], ['http:', 'https:']) ?? `http://localhost:${port}`,
    dataDir,
    databaseUrl: readDatabaseUrl(r, dataDir),
    databasePreparedStatements: r.bool(['DATABASE_PREPARED_STATEMENTS'], true),
    redisUrl: readRedisUrl(r),
    jwtSecret,
    accessTokenTtlSeconds: r.int(['ACCESS_TOKEN_TTL_SECONDS'], 900, 30, 86_400),
    authCacheTtlMs: r.int(['AUTH_CACHE_TTL_MS'], 30_000, 0, 3_600_000),
    refreshTokenTtlSeconds: r.int(['REFRESH_TOKEN_TTL_SECONDS'], 30 * 86_400, 300, 365 * 86_400),
    corsEnabled,
    corsAllowedOrigins,
    logLevel: r.oneOf(['LOG_LEVEL'], LOG_LEVELS, nodeEnv === 'test' ? 'silent' : 'info'),
    metricsEnabled: r.bool(['METRICS_ENABLED'], true),
    metricsPort: r.int(['METRICS_PORT', 'CHAT_METRICS_PORT'], 9094, 0, 65535),
    metricsHost: r.str(['METRICS_HOST'], '0.0.0.0'),
    bodyLimitBytes: r.int(['BODY_LIMIT_BYTES'], 2 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    trustProxy: trust.length ? trust : false,
    rateLimit: {
      max: r.int(['RATE_LIMIT_MAX'], 1200, 0, 1_000_000_000),
      windowMs: r.int(['RATE_LIMIT_WINDOW_MS'], 60_000, 1000, 86_400_000),
    },
    sendLimit: {
      max: r.int(['SEND_RATE_LIMIT_MAX'], 300, 0, 1_000_000_000),
      windowMs: r.int(['SEND_RATE_LIMIT_WINDOW_MS'], 60_000, 1000, 86_400_000),
    },
    historyCachePages: r.int(['HISTORY_CACHE_PAGES'], 2000, 0, 1_000_000),
    searchIndexIntervalMs: r.int(['SEARCH_INDEX_INTERVAL_MS'], 200, 10, 60_000),
    encryptionKeys,
    platformApis: {
      whatsapp: r.str(['WHATSAPP_API_BASE'], 'https://graph.facebook.com/v21.0').replace(/\/$/, ''),
      telegram: r.str(['TELEGRAM_API_BASE'], 'https://api.telegram.org').replace(/\/$/, ''),
      meta: r.str(['META_GRAPH_BASE'], 'https://graph.facebook.com/v21.0').replace(/\/$/, ''),
      timeoutMs: r.int(['PLATFORM_API_TIMEOUT_MS'], 15_000, 100, 120_000),
    },
    realtime: {
      // Browsers send Origin; other clients do not and are not checked. Default: the CORS allow-list,
      // or any origin when that is empty (the socket authenticates with a token, never a cookie).
      allowedOrigins: wsOrigins.length ? wsOrigins : corsAllowedOrigins.length ? corsAllowedOrigins : '*',
      heartbeatMs: r.int(['WS_HEARTBEAT_MS'], 25_000, 100, 600_000),
      maxFrameBytes: r.int(['WS_MAX_FRAME_BYTES'], 256 * 1024, 1024, 16 * 1024 * 1024),
      maxBufferedBytes: r.int(['WS_MAX_BUFFERED_BYTES'], 4 * 1024 * 1024, 16 * 1024, 1024 * 1024 * 1024),
      resumeLimit: r.int(['WS_RESUME_LIMIT'], 1000, 1, 100_000),
      connectLimit: { max: r.int(['WS_CONNECT_LIMIT_MAX'], 120, 0, 1_000_000_000), windowMs: r.int(['WS_CONNECT_LIMIT_WINDOW_MS'], 60_000, 1000, 86_400_000) },
      messageLimit: { max: r.int(['WS_MESSAGE_LIMIT_MAX'], 200, 0, 1_000_000_000), windowMs: r.int(['WS_MESSAGE_LIMIT_WINDOW_MS'], 10_000, 100, 86_400_000) },
      typingThrottleMs: r.int(['WS_TYPING_THROTTLE_MS'], 3000, 0, 60_000),
      typingTtlMs: r.int(['WS_TYPING_TTL_MS'], 6000, 500, 60_000),
      idleAfterMs: r.int(['PRESENCE_IDLE_AFTER_MS'], 300_000, 100, 86_400_000),
      presenceTtlMs: r.int(['PRESENCE_TTL_MS'], 90_000, 1000, 3_600_000),
      gapWaitMs: r.int(['WS_GAP_WAIT_MS'], 200, 1, 10_000),
      fanoutChunk: r.int(['WS_FANOUT_CHUNK'], 1000, 1, 1_000_000),
    },
    loginLimit: {
      perAccount: r.int(['LOGIN_MAX_FAILURES_PER_ACCOUNT'], 5, 1, 1_000_000),
      perIp: r.int(['LOGIN_MAX_FAILURES_PER_IP'], 30, 1, 1_000_000),
      windowMs: r.int(['LOGIN_FAILURE_WINDOW_MS'], 15 * 60_000, 1000, 86_400_000),
    },
    defaultOrganization: {
      slug: defaultSlug,
      name: r.str(['DEFAULT_ORGANIZATION_NAME'], 'Default'),
      registrationOpen: r.bool(['REGISTRATION_OPEN'], true),
    },
    platformAdmin:
      adminUser && adminPassword ? { username: adminUser.toLowerCase(), password: adminPassword, email: r.str(['PLATFORM_ADMIN_EMAIL'], null) } : null,
    seedDemo: r.bool(['SEED_DEMO'], false),
    hostJwt: readHostJwt(r),
    files: readFileStorage(r),
    integrations: readIntegrations(r),
    media: { allowPrivate: false, maxBytes: 0, timeoutMs: 0 },
    relay: { allowPrivate: r.bool(['CHATWOOT_ALLOW_PRIVATE'], false), timeoutMs: r.int(['CHATWOOT_TIMEOUT_MS'], 15_000, 100, 120_000) },
  };
  // Read after the rest: its defaults and checks depend on UPLOAD_MAX_BYTES and OUTBOX_LOCK_MS.
  config.media = readMedia(r, config.files.uploadMaxBytes, config.integrations.outbox.lockMs);
  if (config.seedDemo && nodeEnv === 'production') r.problems.push('SEED_DEMO: demo data is refused when NODE_ENV=production');
  if (r.problems.length) throw new ConfigError(r.problems);
  return Object.freeze(config);
}

/** Is the database URL a PostgreSQL one? */
export const isPostgresUrl = (url: string): boolean => /^postgres(ql)?:\/\//.test(url);
