import { createA1DecryptStream } from '../../crypto/a1-decrypt-stream.js';
import { loadKeyring } from '../../crypto/keyring.js';
import {
  PROGRAM,
  UsageError,
  expectPositionals,
  helpOption,
  parseCommandArgs,
  type Command,
} from '../command.js';
import { parseKeyOption } from '../key-option.js';
import { transformFile } from '../transform-file.js';

export const decrypt: Command = {
  name: 'decrypt',
  summary: 'decrypt an A1 object (e.g. downloaded from the bucket) into a file',
  help: `Usage: ${PROGRAM} decrypt --key ID:PATH [--key ID:PATH ...] [--force] IN OUT

Decrypt the A1 object IN into OUT. The object names the id of the master key
it was encrypted with; give that key with --key (the first --key is the
current key, the others previous keys, as in StorageEncryption).
OUT (mode 0600) appears only after the whole object has been authenticated
(GCM tag); a corrupted, truncated or foreign object leaves no OUT behind.
Streams: works on files of any size with bounded memory.

Options:
  --key ID:PATH   a master key (one or more)
  --force         replace OUT if it exists (default: refuse)
  -h, --help      show this help
`,
  async run(args) {
    const { values, positionals } = parseCommandArgs({
      args,
      options: { ...helpOption, key: { type: 'string', multiple: true }, force: { type: 'boolean' } },
      allowPositionals: true,
    });
    if (values.help) {
      process.stdout.write(this.help);
      return;
    }
    const [current, ...previous] = (values.key ?? []).map(parseKeyOption);
    if (current === undefined) throw new UsageError('decrypt needs at least one --key ID:PATH');
    expectPositionals(positionals, ['IN', 'OUT']);
    const keyring = await loadKeyring(current, previous);
    const [inPath, outPath] = positionals as [string, string];
    await transformFile(
      inPath,
      outPath,
      createA1DecryptStream(keyring, { label: inPath }),
      values.force ?? false,
    );
  },
};
