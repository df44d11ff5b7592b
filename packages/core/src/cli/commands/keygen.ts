import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AtomicOutput } from '../atomic-output.js';
import { PROGRAM, expectPositionals, parseCommandArgs, type Command } from '../command.js';
import { PRIVATE_FILE_MODE } from '../transform-file.js';

export const keygen: Command = {
  name: 'keygen',
  summary: 'write a new random master key file (base64, mode 0600)',
  help: `Usage: ${PROGRAM} keygen OUT

Write a new master key to OUT: 32 random bytes in base64 and a newline, as
\`openssl rand -base64 32\` writes it. OUT gets mode 0600. An existing OUT is
never overwritten. Use the file in StorageEncryption.MasterKey as [id, "OUT"].

Options:
  -h, --help   show this help
`,
  async run(args) {
    const { positionals } = parseCommandArgs({ args, options: {}, allowPositionals: true });
    expectPositionals(positionals, ['OUT']);
    const output = await AtomicOutput.create(positionals[0]!, { mode: PRIVATE_FILE_MODE, overwrite: false });
    try {
      await pipeline(Readable.from([`${randomBytes(32).toString('base64')}\n`]), output.stream());
      await output.commit();
    } finally {
      await output.abort();
    }
  },
};
