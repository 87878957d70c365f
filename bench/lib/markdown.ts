/**
 * BENCHMARKS.md: one section per benchmark, between marker comments, rewritten in place by its
 * benchmark. Text outside the markers (the introduction, other benchmarks' sections) is kept.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { fmtMs, fmtPct, fmtRps } from './benchmark.ts';
import type { LoadResult } from './load.ts';

const INTRO = `# Benchmarks

Measured by \`npm run bench\` (\`tsx bench/run.ts\`). \`npm run bench -- <id>\` runs one benchmark;
\`npm run bench -- --help\` lists them and the options. Each benchmark rewrites its own section
below (between its \`bench:<id>\` marker comments) with the numbers of its latest run; edit
outside the markers only. Raw load-tool output of every run is kept in \`bench/.results/\`
(not committed).
`;

const begin = (id: string) => `<!-- bench:${id}:begin (rewritten by \`npm run bench -- ${id}\`; do not edit by hand) -->`;
const end = (id: string) => `<!-- bench:${id}:end -->`;

/** Replaces (or appends) the section of benchmark `id` in `file`. */
export function writeSection(file: string, id: string, body: string): void {
  const current = existsSync(file) ? readFileSync(file, 'utf8') : INTRO;
  const section = `${begin(id)}\n${body.trim()}\n${end(id)}`;
  const startMarker = `<!-- bench:${id}:begin`;
  const start = current.indexOf(startMarker);
  let next: string;
  if (start >= 0) {
    const stop = current.indexOf(end(id), start);
    if (stop < 0) throw new Error(`${file}: found the begin marker of "${id}" but not its end marker; fix the file by hand`);
    next = current.slice(0, start) + section + current.slice(stop + end(id).length);
  } else {
    next = `${current.trimEnd()}\n\n${section}\n`;
  }
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, next);
  renameSync(tmp, file);
}

/** A GitHub-flavoured Markdown table. */
export function table(header: string[], rows: string[][], align: ('l' | 'r')[] = []): string {
  const sep = header.map((_, i) => (align[i] === 'r' ? '---:' : '---'));
  return [header, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** One measured load run, as the wrk-style benchmarks record it. */
export interface LoadRunRow {
  label: string;
  result: LoadResult;
  foreignCpu: number | null;
}

/** The per-run table of a load benchmark; `second` names the second column (target, page...). */
export function loadRunTable<R extends LoadRunRow>(second: string, runs: R[], secondOf: (r: R) => string): string {
  return table(
    ['run', second, 'requests/s', 'p50', 'p99', 'requests', 'non-2xx', 'socket errors', 'other CPU'],
    runs.map((r) => [
      r.label,
      secondOf(r),
      fmtRps(r.result.rps),
      fmtMs(r.result.latencyMs.p50),
      fmtMs(r.result.latencyMs.p99),
      r.result.requests.toLocaleString('en-US'),
      String(r.result.non2xx),
      String(r.result.socketErrors),
      fmtPct(r.foreignCpu),
    ]),
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}
