import {
  appendFileSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  truncateSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyFileOf, manifest, vectorPath } from '../../crypto/__tests__/helpers.js';
import { loadKeyring, type Keyring } from '../../crypto/keyring.js';
import { transformFile } from '../transform-file.js';
import { decryptStreamFor } from './decrypt.js';

const keyring = (): Promise<Keyring> => {
  const { current, previous } = manifest.keySet;
  return loadKeyring(
    { id: current, path: keyFileOf(current) },
    previous.map((id) => ({ id, path: keyFileOf(id) })),
  );
};

/** The largest A1 vector: the file changes after its size was taken, before it is read. */
const vector = [...manifest.vectors].sort((a, b) => b.ciphertextSize - a.ciphertextSize)[0]!;

describe('decrypt of an A1 file', () => {
  let dir: string;
  let input: string;
  let output: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'oos-decrypt-'));
    input = join(dir, 'object.a1');
    output = join(dir, 'plain');
    copyFileSync(vectorPath(vector.ciphertextFile), input);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('decrypts byte-exact with the file size known', async () => {
    await transformFile(input, output, await decryptStreamFor(input, await keyring(), undefined), false);
    expect(readFileSync(output).equals(readFileSync(vectorPath(vector.plaintextFile)))).toBe(true);
  });

  it('knows the file size: a file that grew since is refused as changed, and no OUT is left', async () => {
    const stream = await decryptStreamFor(input, await keyring(), undefined);
    appendFileSync(input, Buffer.alloc(16));
    await expect(transformFile(input, output, stream, false)).rejects.toThrow(
      new RegExp(
        `has more bytes than its stored size of ${vector.ciphertextSize} bytes: it changed while being read`,
      ),
    );
    expect(existsSync(output)).toBe(false);
  });

  it('knows the file size: a file that shrank since is refused as truncated, and no OUT is left', async () => {
    const stream = await decryptStreamFor(input, await keyring(), undefined);
    truncateSync(input, vector.ciphertextSize - 1);
    await expect(transformFile(input, output, stream, false)).rejects.toThrow(
      `ended after ${vector.ciphertextSize - 1} of its ${vector.ciphertextSize} stored bytes: it is truncated`,
    );
    expect(existsSync(output)).toBe(false);
  });
});
