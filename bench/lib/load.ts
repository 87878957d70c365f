/**
 * HTTP load generators: `wrk` when installed (a C program, far lighter than a Node load generator
 * on a small machine), else autocannon (devDependency) through its CLI in a child process. Both
 * targets of one benchmark always use the same tool with the same parameters.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand, shellQuote } from './proc.ts';

export interface LoadOptions {
  url: string;
  connections: number;
  durationSec: number;
  /** Request headers; values listed in `secretHeaders` are shown as <redacted> in printed commands. */
  headers?: Record<string, string>;
  /** HTTP method (default GET). With wrk, a method other than GET or a body runs bench/wrk-post.lua. */
  method?: 'GET' | 'POST';
  /** Request body, the same on every request; give its Content-Type in `headers`. */
  body?: string;
  /**
   * A file of request paths, one per line: each request takes the next one (cycling) against the
   * host of `url`. wrk only (bench/wrk-paths.lua); GET without a body.
   */
  pathsFile?: string;
}

export interface LoadResult {
  /** Completed requests per second over the whole run. */
  rps: number;
  requests: number;
  durationSec: number;
  latencyMs: { p50: number; p99: number };
  /** Responses that were not 2xx/3xx (wrk counts status >= 400; autocannon counts non-2xx). */
  non2xx: number;
  /** Connect/read/write errors and timeouts. */
  socketErrors: number;
  /** The tool's own output, kept for the results folder. */
  raw: string;
}

export interface LoadTool {
  name: string;
  version: string;
  /** The command line for `opts`, with the Authorization header value replaced by `<token>`. */
  describe(opts: LoadOptions): string;
  run(opts: LoadOptions): Promise<LoadResult>;
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      if (statSync(file).isFile()) return file;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

const redact = (name: string, value: string): string => (/^authorization$/i.test(name) ? value.replace(/^(\w+\s+).*$/, '$1<token>') : value);

// ---------------------------------------------------------------- wrk

const WRK_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function wrkTimeMs(text: string, what: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new Error(`wrk: cannot read ${what} "${text}"`);
  return Number(m[1]) * WRK_UNITS[m[2]!]!;
}

/** Parses wrk's report (run with --latency). Exported for checking the parser by hand. */
export function parseWrk(out: string): Omit<LoadResult, 'raw'> {
  const need = (re: RegExp, what: string): RegExpExecArray => {
    const m = re.exec(out);
    if (!m) throw new Error(`wrk: no ${what} in its output:\n${out}`);
    return m;
  };
  const rps = Number(need(/^Requests\/sec:\s+([\d.]+)/m, 'Requests/sec')[1]);
  const total = need(/^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),/m, 'request count');
  const p50 = wrkTimeMs(need(/^\s*50(?:\.000)?%\s+(\S+)/m, 'p50 (was --latency given?)')[1]!, 'p50');
  const p99 = wrkTimeMs(need(/^\s*99(?:\.000)?%\s+(\S+)/m, 'p99')[1]!, 'p99');
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = sock ? sock.slice(1, 5).reduce((a, b) => a + Number(b), 0) : 0;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  return {
    rps,
    requests: Number(total[1]),
    durationSec: wrkTimeMs(`${total[2]}${total[3]}`, 'duration') / 1000,
    latencyMs: { p50, p99 },
    non2xx,
    socketErrors,
  };
}

/** The Lua script wrk needs to send a method other than GET or a body (shown relative to the repository). */
const WRK_POST_SCRIPT = fileURLToPath(new URL('../wrk-post.lua', import.meta.url));
const WRK_PATHS_SCRIPT = fileURLToPath(new URL('../wrk-paths.lua', import.meta.url));

function wrkTool(bin: string): LoadTool {
  const probe = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  const version = /wrk\s+(\S+)/.exec(`${probe.stdout}${probe.stderr}`)?.[1] ?? 'unknown';
  const args = (o: LoadOptions, show: boolean): string[] => {
    const scripted = (o.method ?? 'GET') !== 'GET' || o.body !== undefined;
    if (o.pathsFile !== undefined) {
      if (scripted) throw new Error('load: pathsFile cannot be combined with a method or a body');
      return ['-t1', `-c${o.connections}`, `-d${o.durationSec}s`, '--latency',
        ...Object.entries(o.headers ?? {}).flatMap(([k, v]) => ['-H', `${k}: ${show ? redact(k, v) : v}`]),
        '-s', show ? 'bench/wrk-paths.lua' : WRK_PATHS_SCRIPT, o.url, '--', show ? '<paths file>' : o.pathsFile];
    }
    return [
      '-t1',
      `-c${o.connections}`,
      `-d${o.durationSec}s`,
      '--latency',
      ...Object.entries(o.headers ?? {}).flatMap(([k, v]) => ['-H', `${k}: ${show ? redact(k, v) : v}`]),
      ...(scripted ? ['-s', show ? 'bench/wrk-post.lua' : WRK_POST_SCRIPT] : []),
      o.url,
      ...(scripted ? ['--', o.method ?? 'GET', o.body ?? ''] : []),
    ];
  };
  return {
    name: 'wrk',
    version,
    describe: (o) => ['wrk', ...args(o, true)].map(shellQuote).join(' '),
    async run(o) {
      const res = await runCommand('wrk', bin, args(o, false), { timeoutMs: (o.durationSec + 30) * 1000 });
      if (res.code !== 0) throw new Error(`wrk exited with ${res.code ?? res.signal}:\n${res.stdout}${res.stderr}`);
      return { ...parseWrk(res.stdout), raw: res.stdout + res.stderr };
    },
  };
}

// ---------------------------------------------------------------- autocannon

interface AutocannonJson {
  requests: { total: number };
  latency: { p50: number; p99: number };
  duration: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

function autocannonTool(bin: string, version: string): LoadTool {
  const args = (o: LoadOptions, show: boolean): string[] => [
    '-c',
    String(o.connections),
    '-d',
    String(o.durationSec),
    '-j',
    '-n',
    ...(o.method ? ['-m', o.method] : []),
    ...(o.body !== undefined ? ['-b', o.body] : []),
    ...Object.entries(o.headers ?? {}).flatMap(([k, v]) => ['-H', `${k}=${show ? redact(k, v) : v}`]),
    o.url,
  ];
  return {
    name: 'autocannon',
    version,
    describe: (o) => ['autocannon', ...args(o, true)].map(shellQuote).join(' '),
    async run(o) {
      if (o.pathsFile !== undefined) throw new Error('a list of request paths needs wrk (apt-get install wrk)');
      const res = await runCommand('autocannon', process.execPath, [bin, ...args(o, false)], { timeoutMs: (o.durationSec + 30) * 1000 });
      if (res.code !== 0) throw new Error(`autocannon exited with ${res.code ?? res.signal}:\n${res.stdout}${res.stderr}`);
      const start = res.stdout.indexOf('{');
      if (start < 0) throw new Error(`autocannon: no JSON in its output:\n${res.stdout}${res.stderr}`);
      const j = JSON.parse(res.stdout.slice(start)) as AutocannonJson;
      return {
        rps: j.requests.total / j.duration,
        requests: j.requests.total,
        durationSec: j.duration,
        latencyMs: { p50: j.latency.p50, p99: j.latency.p99 },
        non2xx: j.non2xx,
        socketErrors: j.errors + j.timeouts,
        raw: res.stdout + res.stderr,
      };
    },
  };
}

/** wrk when on PATH (unless BENCH_TOOL=autocannon), else autocannon from node_modules. */
export function pickLoadTool(root: string): LoadTool {
  const wanted = process.env.BENCH_TOOL;
  if (wanted && wanted !== 'wrk' && wanted !== 'autocannon') throw new Error(`BENCH_TOOL: expected wrk or autocannon, got "${wanted}"`);
  const wrk = wanted === 'autocannon' ? undefined : findOnPath('wrk');
  if (wrk) return wrkTool(wrk);
  if (wanted === 'wrk') throw new Error('BENCH_TOOL=wrk but wrk is not on PATH');
  const pkgDir = join(root, 'node_modules', 'autocannon');
  let version: string;
  try {
    version = (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    throw new Error('no load tool: wrk is not on PATH (apt-get install wrk) and autocannon is not installed (npm install)');
  }
  return autocannonTool(join(pkgDir, 'autocannon.js'), version);
}
