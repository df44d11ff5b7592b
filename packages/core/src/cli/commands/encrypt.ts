import { createA1EncryptStream } from '../../crypto/a1-encrypt-stream.js';
import { loadMasterKey } from '../../crypto/keyring.js';
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

export const encrypt: Command = {
  name: 'encrypt',
  summary: 'encrypt a file into an A1 object, as the plugins store it',
  help: `Usage: ${PROGRAM} encrypt --key ID:PATH [--force] IN OUT

Encrypt IN into OUT in the A1 format (bit-compatible with the Orthanc C++
object-storage plugins), under the master key in key file PATH with id ID
(0..4294967295). Streams: works on files of any size with bounded memory.
OUT (mode 0600) appears only when complete; it is never left half-written.

Options:
  --key ID:PATH   the master key (exactly one)
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
    const keys = values.key ?? [];
    if (keys.length !== 1)
      throw new UsageError(`encrypt needs exactly one --key ID:PATH, got ${keys.length}`);
    expectPositionals(positionals, ['IN', 'OUT']);
    const master = await loadMasterKey(parseKeyOption(keys[0]!));
    const [inPath, outPath] = positionals as [string, string];
    await transformFile(
      inPath,
      outPath,
      createA1EncryptStream(master, { label: inPath }),
      values.force ?? false,
    );
  },
};
