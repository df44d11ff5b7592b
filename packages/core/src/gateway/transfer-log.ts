/** `1.50 MB in 12 ms (125.00 MB/s)`: what each read and write logs, as the C++ plugin does since 2.3.1. */
export function describeTransfer(bytes: number, milliseconds: number): string {
  const seconds = Math.max(milliseconds, 0.001) / 1000;
  return `${humanBytes(bytes)} in ${formatMilliseconds(milliseconds)} (${humanBytes(bytes / seconds)}/s)`;
}

function formatMilliseconds(milliseconds: number): string {
  return milliseconds < 10 ? `${milliseconds.toFixed(2)} ms` : `${Math.round(milliseconds)} ms`;
}

export function humanBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(2)} ${units[unit]}`;
}
