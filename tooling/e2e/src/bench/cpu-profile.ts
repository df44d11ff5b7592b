// Summary of V8 .cpuprofile files (node --cpu-prof): busy time and the functions with the most
// self time, so a benchmark report says where the gateway's CPU goes.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { round } from './bench-common.js';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileSummary {
  readonly profiles: number;
  /** Main-thread time not idle, in ms. */
  readonly busyMs: number;
  readonly top: ReadonlyArray<{ function: string; selfMs: number; share: number }>;
}

const IDLE = new Set(['(idle)', '(program)', '(garbage collector)']);

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file =
    url === '' ? '' : ` ${url.replace(/^.*\/(node_modules|packages|dist)\//, '$1/')}:${lineNumber + 1}`;
  return `${functionName === '' ? '(anonymous)' : functionName}${file}`;
}

/** Sums every .cpuprofile in `dir`; `topCount` functions by self time. */
export function summarizeProfiles(dir: string, topCount = 15): ProfileSummary {
  const self = new Map<string, number>();
  let profiles = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as CpuProfile;
    profiles++;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    profile.samples.forEach((id, i) => {
      const node = byId.get(id)!;
      const name = node.callFrame.functionName;
      // (garbage collector) is work the gateway caused: count it; idle and (program) are not.
      const key = name === '(garbage collector)' ? name : IDLE.has(name) ? undefined : label(node);
      if (key === undefined) return;
      self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
    });
  }
  const busyMs = [...self.values()].reduce((a, b) => a + b, 0);
  const top = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, topCount)
    .map(([fn, ms]) => ({ function: fn, selfMs: round(ms, 1), share: round(ms / busyMs, 3) }));
  return { profiles, busyMs: round(busyMs, 1), top };
}
