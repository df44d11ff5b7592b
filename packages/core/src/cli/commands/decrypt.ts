import { createA1DecryptStream } from '../../crypto/a1-decrypt-stream.js';
import { describeMagic } from '../../crypto/a1-format.js';
import { createC1DecryptStream } from '../../crypto/c1-decrypt-stream.js';
import { loadKeyring, type Keyring } from '../../crypto/keyring.js';
import type { Transform } from 'node:stream';
import { IntegrityError } from '../../errors.js';
import type { ObjectKey } from '../../storage/contract.js';
import { attachmentHelp, attachmentOf, attachmentOptions } from '../attachment-option.js';
import { PROGRAM, UsageError, expectPositionals, parseCommandArgs, type Command } from '../command.js';
import { parseKeyOption } from '../key-option.js';
import { readFileStart } from '../object-format.js';
import { transformFile } from '../transform-file.js';

export const decrypt: Command = {
  name: 'decrypt',
  summary: 'decrypt a C1 or A1 object (e.g. downloaded from the bucket) into a file',
  help: `Usage: ${PROGRAM} decrypt --key ID:PATH [--key ID:PATH ...] [--uuid UUID --content-type TYPE] [--force] IN OUT

Decrypt the C1 or A1 object IN into OUT; the format is read from IN's first
two bytes. The object names the id of the master key it was encrypted with;
give that key with --key (the first --key is the current key, the others
previous keys, as in StorageEncryption).
With --uuid and --content-type, a C1 object that holds another attachment is
refused (as the plugins refuse it); \`inspect\` shows which one it holds.
OUT (mode 0600) appears only after the whole object has been authenticated;
a corrupted, truncated or foreign object leaves no OUT behind.
Streams: works on files of any size with bounded memory.

Options:
  --key ID:PATH         a master key (one or more)
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
        force: { type: 'boolean' },
      },
      allowPositionals: true,
    });
    const [current, ...previous] = (values.key ?? []).map(parseKeyOption);
    if (current === undefined) throw new UsageError('decrypt needs at least one --key ID:PATH');
    expectPositionals(positionals, ['IN', 'OUT']);
    const expected = attachmentOf(values, undefined);
    const keyring = await loadKeyring(current, previous);
    const [inPath, outPath] = positionals as [string, string];
    const stream = await decryptStreamFor(inPath, keyring, expected);
    await transformFile(inPath, outPath, stream, values.force ?? false);
  },
};

/**
 * The stream that decrypts the object in `inPath`, by its version bytes. An A1 file's size goes
 * with it: the tag's place is then known, so no bytes are held back and copied, and a file that
 * grows or shrinks while it is read fails with an IntegrityError.
 */
export async function decryptStreamFor(
  inPath: string,
  keyring: Keyring,
  expected: ObjectKey | undefined,
): Promise<Transform> {
  const { head, size } = await readFileStart(inPath, 2);
  const magic = head.toString('latin1');
  if (magic === 'C1') return createC1DecryptStream(keyring, { label: inPath, ...(expected && { expected }) });
  if (magic === 'A1' || magic.length < 2) {
    if (expected !== undefined)
      throw new UsageError('--uuid and --content-type are for C1 objects; IN is A1');
    return createA1DecryptStream(keyring, { label: inPath, ...(size !== undefined && { size }) });
  }
  throw new IntegrityError(
    `object ${inPath} is not a C1 or A1 object: its version bytes are ${describeMagic(head)}`,
  );
}
