/** What a benchmark is, what it gets from the runner and what it gives back. */
import type { LoadTool } from './load.ts';
import type { Machine } from './machine.ts';

export interface Protocol {
  connections: number;
  warmupSec: number;
  durationSec: number;
  rounds: number;
}

export interface BenchContext {
  /** The repository root. */
  root: string;
  tool: LoadTool;
  machine: Machine;
  protocol: Protocol;
  /** Where this run keeps raw outputs (bench/.results/<stamp>-<id>/). */
  resultsDir: string;
  /** How the harness was invoked, e.g. "npm run bench" or "npm run bench -- users-me". */
  command: string;
  /** Profile the server under test with `node --cpu-prof` (numbers are then not representative). */
  cpuProfile: boolean;
  log(line: string): void;
}

export interface BenchOutcome {
  /** failed: the measurement itself is invalid (errors, non-2xx answers); measured: there is no goal to meet. */
  status: 'met' | 'not met' | 'measured' | 'failed';
  /** A few lines for stdout. */
  summary: string;
  /** The benchmark's section of BENCHMARKS.md (from its `## ` heading on). */
  markdown: string;
}

export interface Benchmark {
  /** Used on the command line (`npm run bench -- <id>`) and in the BENCHMARKS.md markers. */
  id: string;
  title: string;
  run(ctx: BenchContext): Promise<BenchOutcome>;
}

export function median(values: number[]): number {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export const fmtRps = (n: number): string => Math.round(n).toLocaleString('en-US');
export const fmtMs = (ms: number): string => (ms < 10 ? `${ms.toFixed(2)} ms` : ms < 100 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`);
export const fmtPct = (share: number | null): string => (share === null ? 'n/a' : `${(share * 100).toFixed(1)} %`);
