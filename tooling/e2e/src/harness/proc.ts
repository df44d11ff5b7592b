import { readFileSync, readdirSync } from 'node:fs';

/** Command line of a process, arguments joined by spaces; undefined once it is gone. */
export function commandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return undefined;
  }
}

/**
 * The fields of a `/proc/.../stat` text from field 3 (state) on: index i is field i + 3. The
 * command name (field 2) may hold spaces, so the split starts after its last ')'.
 */
export function statFieldsOf(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The stat fields of a process (see statFieldsOf); undefined once it is gone. */
function statFields(pid: number): string[] | undefined {
  try {
    return statFieldsOf(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

function parentPid(pid: number): number | undefined {
  const fields = statFields(pid);
  return fields && Number(fields[1]); // field 4
}

/** PIDs of the direct children of `pid`. */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const child = Number(entry);
    if (parentPid(child) === pid) children.push(child);
  }
  return children;
}

/** The gateway: the child of Orthanc whose command line names gateway.mjs. */
export function findGatewayPids(orthancPid: number): number[] {
  return childPids(orthancPid).filter((child) => commandLine(child)?.includes('gateway.mjs') === true);
}

/** True while `pid` exists and is not a zombie. */
export function processExists(pid: number): boolean {
  const fields = statFields(pid);
  return fields !== undefined && fields[0] !== 'Z';
}

/** Resident memory of a process from /proc (VmRSS now, VmHWM its peak), in bytes. */
export function processMemory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') * 1024, peak: kib('VmHWM') * 1024 };
}

/** Open file descriptors of a process. */
export function openDescriptors(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** CPU time (user + system) of a process so far, in ms; undefined once it is gone. */
export function cpuMs(pid: number): number | undefined {
  const times = cpuTimesMs(pid);
  return times && times.user + times.system;
}

/** User and system (kernel) CPU time of a process so far, in ms; undefined once it is gone. */
export function cpuTimesMs(pid: number): { user: number; system: number } | undefined {
  const fields = statFields(pid);
  // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
  return fields && { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 };
}

/** Minor page faults of a process so far (field 10 of stat): pages the kernel had to map in. */
export function minorFaults(pid: number): number | undefined {
  const fields = statFields(pid);
  return fields && Number(fields[7]);
}

const TICKS_PER_SECOND = 100; // Linux USER_HZ

/** utime + stime of a process, in seconds (0 once it is gone). */
export function cpuSeconds(pid: number): number {
  const fields = statFields(pid);
  return fields ? (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND : 0;
}

/** cutime + cstime of a process's `/proc/PID/stat` text: its waited-for children's CPU, in seconds. */
export function childrenCpuSeconds(stat: string): number {
  const fields = statFieldsOf(stat);
  return (Number(fields[13]) + Number(fields[14])) / TICKS_PER_SECOND;
}

/**
 * CPU time (user + system) of a process so far by kind of thread, in ms, from
 * /proc/<pid>/task/<tid>/stat, threads grouped by name: for Node, "node" (main thread),
 * "WorkerThread" (worker threads), "V8Worker" (V8's GC and compiler helpers), "libuv-worker"
 * (file-system and crypto pool).
 */
export function threadCpuMs(pid: number): Record<string, number> {
  const byName: Record<string, number> = {};
  const ticksMs = 1000 / TICKS_PER_SECOND;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = statFieldsOf(stat);
    byName[name] = (byName[name] ?? 0) + (Number(fields[11]) + Number(fields[12])) * ticksMs;
  }
  return byName;
}
