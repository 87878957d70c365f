/**
 * Summary of a V8 .cpuprofile (as written by `node --cpu-prof`): top functions by self time and
 * self time per area (a package in node_modules, a folder of src/, Node internals, GC...).
 *
 * Also usable alone: `npx tsx bench/lib/cpuprofile.ts <file.cpuprofile> [top]`.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

function where(url: string, root: string): string {
  if (!url) return '';
  let p = url.startsWith('file://') ? fileURLToPath(url) : url;
  if (p.startsWith(root + '/')) p = p.slice(root.length + 1);
  return p.replace(/^.*?node_modules\//, 'node_modules/');
}

function area(fn: string, file: string): string {
  if (SPECIAL.has(fn)) return fn;
  if (!file) return '(native / V8 builtins)';
  const nm = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
  if (nm) return nm[1]!;
  if (file.startsWith('node:')) return 'node: internals';
  const src = /^(src\/(?:[^/]+\/)?[^/]*)/.exec(file);
  if (src) return src[1]!.replace(/\/[^/]*\.ts$/, '/') || file;
  return file;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  functions: { name: string; selfMs: number; share: number }[];
  areas: { name: string; selfMs: number; share: number }[];
}

/** Self time per function and per area; shares are of the non-idle time. */
export function summarizeProfile(file: string, root: string, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const fnTime = new Map<string, number>();
  const areaTime = new Map<string, number>();
  let total = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const node = byId.get(id);
    if (!node) return;
    const { functionName, url, lineNumber } = node.callFrame;
    const fn = functionName || '(anonymous)';
    total += us;
    if (fn === '(idle)') {
      idle += us;
      return;
    }
    const file = where(url, root);
    const key = file ? `${fn}  ${file}:${lineNumber + 1}` : fn;
    fnTime.set(key, (fnTime.get(key) ?? 0) + us);
    const a = area(fn, file);
    areaTime.set(a, (areaTime.get(a) ?? 0) + us);
  });
  const busy = total - idle || 1;
  const rank = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, selfMs: us / 1000, share: us / busy }));
  return { totalMs: total / 1000, idleMs: idle / 1000, functions: rank(fnTime), areas: rank(areaTime) };
}

export function formatSummary(s: ProfileSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1).padStart(5)} %`;
  const ms = (x: number) => `${Math.round(x).toLocaleString('en-US').padStart(8)} ms`;
  return [
    `profiled ${ms(s.totalMs).trim()}, of which idle ${ms(s.idleMs).trim()}; shares below are of the busy time`,
    '',
    'self time by area:',
    ...s.areas.map((a) => `  ${pct(a.share)} ${ms(a.selfMs)}  ${a.name}`),
    '',
    'top functions by self time:',
    ...s.functions.map((f) => `  ${pct(f.share)} ${ms(f.selfMs)}  ${f.name}`),
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: tsx bench/lib/cpuprofile.ts <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  process.stdout.write(`${formatSummary(summarizeProfile(file, process.cwd(), Number(top ?? 30)))}\n`);
}
