import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyError } from '../errors.js';
import { Keyring, checkKeyId, loadKeyring, loadMasterKey } from './keyring.js';

const KEY = Buffer.from('9fd91eedfdb25e08847ccb2b75cd8ca79d0cf0f966c4c59bf1e867793ebb06ac', 'hex');
const KEY_B64 = KEY.toString('base64');
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** The same leading bits with a non-zero bit where base64 of 32 bytes must have zeros. */
const nonCanonical = (char: string): string => ALPHABET[ALPHABET.indexOf(char) | 1]!;

describe('key files', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'oos-keyring-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  let counter = 0;
  function keyFile(content: string | Buffer): string {
    const path = join(dir, `key-${++counter}.b64`);
    writeFileSync(path, content);
    return path;
  }

  it.each([
    ['a trailing LF', `${KEY_B64}\n`],
    ['a trailing CRLF', `${KEY_B64}\r\n`],
    ['no line ending', KEY_B64],
  ])('accepts a key with %s', async (_what, content) => {
    const master = await loadMasterKey({ id: 7, path: keyFile(content) });
    expect(master.id).toBe(7);
    expect(master.key.equals(KEY)).toBe(true);
  });

  const secretLooking = 'c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0';
  it.each([
    ['31 bytes', KEY.subarray(1).toString('base64')],
    ['33 bytes', Buffer.concat([KEY, Buffer.from([1])]).toString('base64')],
    ['64 bytes', Buffer.concat([KEY, KEY]).toString('base64')],
    ['hex instead of base64', KEY.toString('hex')],
    ['an empty file', ''],
    ['only a newline', '\n'],
    ['a space inside', `${KEY_B64.slice(0, 20)} ${KEY_B64.slice(20)}`],
    ['a line break inside', `${KEY_B64.slice(0, 20)}\n${KEY_B64.slice(20)}\n`],
    ['two trailing newlines', `${KEY_B64}\n\n`],
    ['leading whitespace', ` ${KEY_B64}`],
    [
      'URL-safe characters',
      Buffer.alloc(32, 0xfb).toString('base64').replace(/\+/g, '-').replace(/\//g, '_'),
    ],
    ['missing padding', KEY_B64.replace(/=+$/, '')],
    ['non-canonical padding bits', `${KEY_B64.slice(0, 42)}${nonCanonical(KEY_B64[42]!)}=`],
    ['a trailing CR without LF', `${KEY_B64}\r`],
    ['something that is not a key', secretLooking],
  ])('refuses %s, naming the file and never the content', async (_what, content) => {
    const path = keyFile(content);
    const error = await loadMasterKey({ id: 1, path }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyError);
    const message = (error as Error).message;
    expect(message).toContain(path);
    expect(message).toMatch(/32 bytes|32-byte/);
    expect(message).not.toContain(secretLooking);
    if (content.trim().length > 0) expect(message).not.toContain(content.trim().slice(0, 12));
  });

  it('refuses a missing file, naming the path', async () => {
    const path = join(dir, 'does-not-exist.b64');
    await expect(loadMasterKey({ id: 1, path })).rejects.toThrow(`cannot read key file ${path} (ENOENT)`);
  });

  it('refuses a directory, naming the path', async () => {
    const path = join(dir, 'a-directory');
    mkdirSync(path);
    await expect(loadMasterKey({ id: 1, path })).rejects.toThrow(`cannot read key file ${path} (EISDIR)`);
  });

  if (process.getuid?.() !== 0) {
    it('refuses an unreadable file, naming the path', async () => {
      const path = keyFile(`${KEY_B64}\n`);
      chmodSync(path, 0o000);
      await expect(loadMasterKey({ id: 1, path })).rejects.toThrow(`cannot read key file ${path} (EACCES)`);
    });
  }

  it('refuses two keys with the same id, naming both files', async () => {
    const first = keyFile(`${KEY_B64}\n`);
    const second = keyFile(`${KEY_B64}\n`);
    const error = await loadKeyring({ id: 5, path: first }, [
      { id: 6, path: first },
      { id: 5, path: second },
    ]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyError);
    expect((error as Error).message).toBe(
      `master key id 5 is given twice (${first} and ${second}); each id must name one key`,
    );
  });

  it('loads the current key and previous keys by id', async () => {
    const path = keyFile(`${KEY_B64}\n`);
    const keyring = await loadKeyring({ id: 2, path }, [
      { id: 0, path },
      { id: 4294967295, path },
    ]);
    expect(keyring.current.id).toBe(2);
    expect(keyring.ids()).toEqual([2, 0, 4294967295]);
    expect(keyring.get(4294967295).key.equals(KEY)).toBe(true);
  });
});

describe('key ids', () => {
  it.each([0, 1, 4000000000, 4294967295])('accepts %p', (id) => {
    expect(() => checkKeyId(id)).not.toThrow();
  });

  it.each([-1, 1.5, 4294967296, Number.NaN, Infinity, '1', null])('refuses %p', (id) => {
    expect(() => checkKeyId(id, 'for key file /k')).toThrow(
      new KeyError(
        `master key id ${String(id)} (for key file /k) is invalid: it must be an integer from 0 to 4294967295`,
      ),
    );
  });

  it('refuses an out-of-range id when loading a key file, naming the file', async () => {
    await expect(loadMasterKey({ id: 2 ** 32, path: '/nonexistent/key.b64' })).rejects.toThrow(
      /master key id 4294967296 \(for key file \/nonexistent\/key.b64\) is invalid/,
    );
  });

  it('tells which ids are known when one is missing', () => {
    const keyring = new Keyring({ id: 2, key: Buffer.alloc(32) }, [{ id: 1, key: Buffer.alloc(32) }]);
    expect(() => keyring.get(3)).toThrow(
      new KeyError('no master key with id 3 is configured (known ids: 2, 1)'),
    );
  });

  it('refuses duplicate ids in a keyring built directly', () => {
    const key = { id: 9, key: Buffer.alloc(32) };
    expect(() => new Keyring(key, [key])).toThrow(KeyError);
  });
});
