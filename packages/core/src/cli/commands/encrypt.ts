import { stat } from 'node:fs/promises';
import { createA1EncryptStream } from '../../crypto/a1-encrypt-stream.js';
import { createC1EncryptStream } from '../../crypto/c1-encrypt-stream.js';
import { loadMasterKey } from '../../crypto/keyring.js';
import { attachmentFromName, attachmentHelp, attachmentOf, attachmentOptions } from '../attachment-option.js';
import { PROGRAM, UsageError, expectPositionals, parseCommandArgs, type Command } from '../command.js';
import { parseKeyOption } from '../key-option.js';
import { transformFile } from '../transform-file.js';

export const encrypt: Command = {
  name: 'encrypt',
  summary: 'encrypt a file into a C1 (default) or A1 object, as the plugins store it',
  help: `Usage: ${PROGRAM} encrypt --key ID:PATH [--format C1|A1] [--uuid UUID --content-type TYPE] [--force] IN OUT

Encrypt IN into OUT under the master key in key file PATH with id ID
(0..4294967295), as the plugins store objects:
  C1 (default)  chunked, range-readable, bound to its attachment: needs the
                attachment's uuid and content type, given with --uuid and
                --content-type or read from OUT's name when it is an object
                name such as <uuid>.dcm.enc (see docs/c1-format.md)
  A1            the C++ plugins' format (readable by them too)
Streams: works on files of any size with bounded memory.
OUT (mode 0600) appears only when complete; it is never left half-written.

Options:
  --key ID:PATH         the master key (exactly one)
  --format C1|A1        the format (default C1)
${attachmentHelp}
  --force               replace OUT if it exists (default: refuse)
  -h, --help            show this help
`,
  async run(args) {
    const { values, positionals } = parseCommandArgs({
      args,
      options: {
        ...attachmentOptions,
        key: { type: 'string', multiple: true },
        format: { type: 'string' },
        force: { type: 'boolean' },
      },
      allowPositionals: true,
    });
    const keys = values.key ?? [];
    if (keys.length !== 1)
      throw new UsageError(`encrypt needs exactly one --key ID:PATH, got ${keys.length}`);
    const format = values.format ?? 'C1';
    if (format !== 'C1' && format !== 'A1')
      throw new UsageError(`--format must be C1 or A1, got ${JSON.stringify(format)}`);
    expectPositionals(positionals, ['IN', 'OUT']);
    const [inPath, outPath] = positionals as [string, string];
    if (format === 'A1' && (values.uuid !== undefined || values['content-type'] !== undefined)) {
      throw new UsageError('--uuid and --content-type are for C1; A1 objects do not name their attachment');
    }
    const attachment = attachmentOf(values, attachmentFromName(outPath));
    if (format === 'C1' && attachment === undefined) {
      throw new UsageError(
        'C1 binds the object to its attachment: give --uuid and --content-type, or name OUT as the plugins ' +
          'name objects (<uuid>.dcm.enc, <uuid>.json.enc, <uuid>.dcm.head.enc, <uuid>.unk.enc)',
      );
    }
    const master = await loadMasterKey(parseKeyOption(keys[0]!));
    let size: number;
    try {
      size = (await stat(inPath)).size;
    } catch (error) {
      throw new Error(`cannot read ${inPath} (${(error as NodeJS.ErrnoException).code})`);
    }
    const stream =
      format === 'A1'
        ? createA1EncryptStream(master, { label: inPath })
        : createC1EncryptStream(master, { label: inPath, size, attachment: attachment! });
    await transformFile(inPath, outPath, stream, values.force ?? false);
  },
};
