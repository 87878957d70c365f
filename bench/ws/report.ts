/**
 * BENCHMARKS.md sections of the WebSocket benchmark: the same marker comments as the HTTP
 * benchmarks (`<!-- bench:<id>:begin ... -->`, see bench/lib/markdown.ts), with ids `ws-<scenario>`
 * and the command that rewrites them.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { BenchOutcome } from '../lib/benchmark.ts';
import { codeVersion, describeMachine, loadAverage } from '../lib/machine.ts';
import type { WsContext } from './context.ts';

/** Replaces (or appends) the section `ws-<scenario>` of `file`. */
export function writeWsSection(file: string, scenario: string, body: string): void {
  const id = `ws-${scenario}`;
  const begin = `<!-- bench:${id}:begin (rewritten by \`npm run bench:ws -- ${scenario}\`; do not edit by hand) -->`;
  const end = `<!-- bench:${id}:end -->`;
  const current = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const section = `${begin}\n${body.trim()}\n${end}`;
  const start = current.indexOf(`<!-- bench:${id}:begin`);
  let next: string;
  if (start >= 0) {
    const stop = current.indexOf(end, start);
    if (stop < 0) throw new Error(`${file}: found the begin marker of "${id}" but not its end marker; fix the file by hand`);
    next = current.slice(0, start) + section + current.slice(stop + end.length);
  } else next = `${current.trimEnd()}\n\n${section}\n`;
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, next);
  renameSync(tmp, file);
}

/** When and where a section was measured (the list items every section starts its facts with). */
export function facts(ctx: WsContext, started: Date, loadBefore: number[], scenario: string, parleyCodes: string[]): string {
  const avg = loadBefore.map((x) => x.toFixed(2)).join(', ');
  const codes = [...new Set(parleyCodes)];
  return [
    `- Date: ${started.toISOString().replace(/\.\d+Z$/, 'Z')}`,
    `- Code: Parley started on commit ${codes.join(codes.length > 1 ? ' / ' : '')}${codes.length > 1 ? ' — **src/ changed during the scenario: its Parley processes did not all run the same code**' : ''}; harness at ${codeVersion(ctx.root).split(' ')[0]}`,
    `- Machine: ${describeMachine(ctx.machine)}`,
    `- Load average (1, 5, 15 min) before the scenario: ${avg}${loadBefore[0]! > ctx.machine.cores * 0.75 ? ' — **the machine was busy with other work; figures are distorted**' : ''}`,
    `- Command: \`${ctx.command}\`${ctx.command === 'npm run bench:ws' ? ` (runs every scenario; this one alone: \`npm run bench:ws -- ${scenario}\`)` : ''}`,
  ].join('\n');
}

export const startFacts = (): { started: Date; loadBefore: number[] } => ({ started: new Date(), loadBefore: loadAverage() });

export type Outcome = BenchOutcome;

/** "met" / "not met" / "failed" in bold for the text. */
export const verdictWord = (status: BenchOutcome['status'], failure?: string): string =>
  status === 'failed' ? `**FAILED**${failure ? ` (${failure})` : ''}` : status === 'met' ? '**met**' : '**not met**';
