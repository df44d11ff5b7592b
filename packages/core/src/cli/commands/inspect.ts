import { stat } from 'node:fs/promises';
import { A1_OVERHEAD, A1_PREFIX_SIZE, describeMagic } from '../../crypto/a1-format.js';
import {
  C1_HEADER_SIZE,
  c1ObjectSize,
  chunkCount,
  decodeC1Header,
  describeAttachment,
} from '../../crypto/c1-format.js';
import { IntegrityError } from '../../errors.js';
import { PROGRAM, expectPositionals, parseCommandArgs, type Command } from '../command.js';
import { readFileHead } from '../object-format.js';

export const inspect: Command = {
  name: 'inspect',
  summary: 'show the format, key id, sizes and chunks of an encrypted object (no key needed)',
  help: `Usage: ${PROGRAM} inspect [--json] FILE

Print what the header of the encrypted object FILE says: its format (C1 or
A1), the id of the master key it needs, its size and its plaintext's size,
and for C1 the chunk size and count and the attachment it is bound to.
Needs no key and never prints key material. It does not authenticate
anything: \`decrypt\` does.

Options:
  --json        one JSON object instead of lines
  -h, --help    show this help
`,
  async run(args) {
    const { values, positionals } = parseCommandArgs({
      args,
      options: { json: { type: 'boolean' } },
      allowPositionals: true,
    });
    expectPositionals(positionals, ['FILE']);
    const [path] = positionals as [string];
    const head = await readFileHead(path, C1_HEADER_SIZE);
    const objectSize = (await stat(path)).size;
    const facts = describeObject(path, head, objectSize);
    if (values.json) {
      process.stdout.write(`${JSON.stringify(facts)}\n`);
      return;
    }
    const lines = Object.entries(facts).map(([name, value]) => `${`${name}:`.padEnd(17)} ${String(value)}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  },
};

function describeObject(path: string, head: Buffer, objectSize: number): Record<string, string | number> {
  const magic = head.subarray(0, 2).toString('latin1');
  if (magic === 'C1') {
    const header = decodeC1Header(head, `object ${path}`);
    const expected = c1ObjectSize(header.plaintextSize, header.chunkSize);
    return {
      format: 'C1',
      keyId: header.keyId,
      objectSize,
      plaintextSize: header.plaintextSize,
      chunkSize: header.chunkSize,
      chunkCount: chunkCount(header.plaintextSize, header.chunkSize),
      attachment: describeAttachment(header.uuid, header.contentType),
      uuid: header.uuid,
      contentType: header.contentType,
      sizeCheck:
        objectSize === expected
          ? 'ok (matches the header)'
          : `MISMATCH: the header implies ${expected} bytes (${objectSize < expected ? 'truncated' : 'extra bytes'})`,
    };
  }
  if (magic === 'A1') {
    if (head.length < A1_PREFIX_SIZE || objectSize < A1_OVERHEAD) {
      throw new IntegrityError(
        `object ${path} is ${objectSize} bytes, shorter than the ${A1_OVERHEAD}-byte A1 overhead`,
      );
    }
    return {
      format: 'A1',
      keyId: head.readUInt32LE(2),
      objectSize,
      plaintextSize: objectSize - A1_OVERHEAD,
      chunkCount: '1 (one AES-256-GCM body; ranges need the whole object)',
      attachment: 'not recorded (A1 objects do not name their attachment)',
    };
  }
  throw new IntegrityError(
    `object ${path} is not a C1 or A1 object: its version bytes are ${describeMagic(head.subarray(0, 2))}`,
  );
}
