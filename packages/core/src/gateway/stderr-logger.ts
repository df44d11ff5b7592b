import type { Logger } from '../logging.js';

/**
 * The gateway's logger: one `I|W|E<TAB>message` line per message on stderr, which the native
 * shim forwards to Orthanc's log at that level. Stderr is a pipe, written synchronously on Linux.
 */
export function createStderrLogger(
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  const emit = (level: 'I' | 'W' | 'E', message: string) =>
    write(`${level}\t${message.replace(/[\r\n]+/g, ' | ')}\n`);
  return {
    info: (message) => emit('I', message),
    warn: (message) => emit('W', message),
    error: (message) => emit('E', message),
  };
}

/** Routes console output (e.g. from an SDK) to the logger: stdout only carries the handshake. */
export function redirectConsole(log: Logger): void {
  const text = (args: unknown[]) => args.map((a) => (typeof a === 'string' ? a : String(a))).join(' ');
  console.log = (...args: unknown[]) => log.info(text(args));
  console.info = console.log;
  console.debug = console.log;
  console.warn = (...args: unknown[]) => log.warn(text(args));
  console.error = (...args: unknown[]) => log.error(text(args));
}

/**
 * Node prints process warnings (e.g. an SDK's end-of-support notice) as bare stderr lines, which
 * the shim would log as errors: log them as warnings instead, through our own line format.
 */
export function routeProcessWarnings(log: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning) => log.warn(`${warning.name}: ${warning.message}`));
}
