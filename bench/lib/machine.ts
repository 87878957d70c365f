/**
 * What the numbers were measured on, and how busy the machine was with other work meanwhile.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';

export interface Machine {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  kernel: string;
}

export function machine(): Machine {
  const list = cpus();
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: totalmem() / 1024 ** 3,
    node: process.version,
    kernel: release(), // what `uname -r` prints
  };
}

export const describeMachine = (m: Machine): string =>
  `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB.toFixed(1)} GiB RAM, Node ${m.node}, Linux kernel ${m.kernel}`;

export const loadAverage = (): [number, number, number] => loadavg() as [number, number, number];

/**
 * CPU accounting from /proc (Linux only): how much of the machine's CPU time went to processes
 * other than ours (the harness, its reaped children such as the load tool, and the servers).
 */
export interface CpuSnapshot {
  busy: number;
  total: number;
  ours: number;
}

const ticks = (pid: number | 'self'): { own: number; children: number } => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the ")" closing the command name: state is field 3; utime..cstime are fields 14..17.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const n = (field: number) => Number(f[field - 3]);
  return { own: n(14) + n(15), children: n(16) + n(17) };
};

/** A snapshot, or null when /proc is not readable. `servers` are the pids of running servers. */
export function cpuSnapshot(servers: number[]): CpuSnapshot | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already included in user)
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = v;
    const busy = user + nice + system + irq + softirq + steal;
    const self = ticks('self');
    let ours = self.own + self.children;
    for (const pid of servers) ours += ticks(pid).own;
    return { busy, total: busy + idle + iowait, ours };
  } catch {
    return null;
  }
}

/** Share of all cores' time used by other processes between two snapshots (0..1), or null. */
export function foreignCpuShare(a: CpuSnapshot | null, b: CpuSnapshot | null): number | null {
  if (!a || !b || b.total <= a.total) return null;
  const foreign = b.busy - a.busy - (b.ours - a.ours);
  return Math.max(0, foreign) / (b.total - a.total);
}

/**
 * Waits until the machine is quiet: the share of all cores in use, over half-second samples, stays
 * under `maxBusy` twice in a row (at most `maxMs`). Used after a run whose server may keep working
 * in the background once the load stops (PostgreSQL's autovacuum and checkpoints after a
 * write-heavy run), so that such work does not fall into the next target's run. Returns the time
 * waited.
 */
export async function waitForQuietMachine(maxBusy = 0.15, maxMs = 120_000): Promise<{ waitedMs: number; quiet: boolean }> {
  const started = Date.now();
  let quietSamples = 0;
  let prev = cpuSnapshot([]);
  while (Date.now() - started < maxMs) {
    await new Promise((r) => setTimeout(r, 500));
    const now = cpuSnapshot([]);
    if (!prev || !now || now.total <= prev.total) return { waitedMs: Date.now() - started, quiet: false };
    const busy = (now.busy - prev.busy) / (now.total - prev.total);
    quietSamples = busy < maxBusy ? quietSamples + 1 : 0;
    if (quietSamples >= 2) return { waitedMs: Date.now() - started, quiet: true };
    prev = now;
  }
  return { waitedMs: Date.now() - started, quiet: false };
}

/** The commit measured, e.g. "3f3be55" or "3f3be55 + uncommitted changes in src/", or "unknown". */
export function codeVersion(root: string): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const sha = git('rev-parse', '--short', 'HEAD');
    return git('status', '--porcelain', '--', 'src') ? `${sha} + uncommitted changes in src/` : sha;
  } catch {
    return 'unknown (not a git checkout)';
  }
}
