import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  writeSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { keyFileOf, manifest, vectorPath } from '../crypto/__tests__/helpers.js';

const MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../dist/cli/main.js');

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Result {
  const result = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Failure: non-zero exit and exactly one line on stderr. */
function expectOneLineFailure(result: Result, status: number, pattern: RegExp): void {
  expect(result.status).toBe(status);
  expect(result.stderr).toMatch(/^orthanc-object-storage: [^\n]+\n$/);
  expect(result.stderr).toMatch(pattern);
}

const keySetArgs = (): string[] => {
  const { current, previous } = manifest.keySet;
  return [current, ...previous].flatMap((id) => ['--key', `${id}:${keyFileOf(id)}`]);
};

describe('orthanc-object-storage CLI', () => {
  let dir: string;
  beforeAll(() => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`pnpm build\` in packages/core first`);
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'oos-cli-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('help', () => {
    it('lists the commands at top level', () => {
      const result = cli('--help');
      expect(result.status).toBe(0);
      for (const name of ['keygen', 'encrypt', 'decrypt'])
        expect(result.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    });

    it.each(['keygen', 'encrypt', 'decrypt'])('has --help on %s', (name) => {
      const result = cli(name, '--help');
      expect(result.status).toBe(0);
      expect(result.stdout).toMatch(new RegExp(`^Usage: orthanc-object-storage ${name} `));
      expect(result.stderr).toBe('');
    });

    it('refuses no command, an unknown command and unknown options as usage errors', () => {
      expectOneLineFailure(cli(), 2, /no command given/);
      expectOneLineFailure(
        cli('frobnicate'),
        2,
        /unknown command 'frobnicate' \(commands: keygen, encrypt, decrypt\)/,
      );
      expectOneLineFailure(cli('keygen', '--bogus', join(dir, 'k')), 2, /keygen: Unknown option '--bogus'/);
      expectOneLineFailure(
        cli('encrypt', join(dir, 'a'), join(dir, 'b')),
        2,
        /exactly one --key ID:PATH, got 0/,
      );
      expectOneLineFailure(
        cli('decrypt', '--key', 'abc', 'a', 'b'),
        2,
        /--key must be ID:PATH with a numeric id/,
      );
      expectOneLineFailure(cli('decrypt', '--key', '1:k', 'a'), 2, /expected 2 argument\(s\) IN OUT, got 1/);
    });
  });

  describe('keygen', () => {
    it('writes a base64 32-byte key with mode 0600 and refuses to overwrite it', () => {
      const out = join(dir, 'master.key');
      expect(cli('keygen', out)).toEqual({ status: 0, stdout: '', stderr: '' });
      const content = readFileSync(out, 'latin1');
      expect(content).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
      expect(Buffer.from(content.trim(), 'base64').length).toBe(32);
      expect(statSync(out).mode & 0o777).toBe(0o600);

      expectOneLineFailure(cli('keygen', out), 1, /already exists; refusing to overwrite it/);
      expect(readFileSync(out, 'latin1')).toBe(content);
      expect(readdirSync(dir)).toEqual(['master.key']);

      const other = join(dir, 'other.key');
      expect(cli('keygen', other).status).toBe(0);
      expect(readFileSync(other, 'latin1')).not.toBe(content);
    });

    it('fails with one line when the directory does not exist', () => {
      expectOneLineFailure(
        cli('keygen', join(dir, 'missing', 'k')),
        1,
        /cannot create a file beside .*missing\/k \(ENOENT\)/,
      );
    });
  });

  describe('decrypt', () => {
    it.each(manifest.vectors.map((v) => [v.name, v] as const))(
      'decrypts vector %s byte-exact',
      (_name, vector) => {
        const out = join(dir, 'plain.out');
        const result = cli('decrypt', ...keySetArgs(), vectorPath(vector.ciphertextFile), out);
        expect(result).toEqual({ status: 0, stdout: '', stderr: '' });
        expect(readFileSync(out).equals(readFileSync(vectorPath(vector.plaintextFile)))).toBe(true);
        expect(statSync(out).mode & 0o777).toBe(0o600);
        expect(readdirSync(dir)).toEqual(['plain.out']);
      },
    );

    it.each(manifest.negative.map((v) => [v.name, v] as const))(
      'refuses negative vector %s with one line and no output',
      (_name, vector) => {
        const out = join(dir, 'plain.out');
        const result = cli('decrypt', ...keySetArgs(), vectorPath(vector.file), out);
        expectOneLineFailure(
          result,
          1,
          /^orthanc-object-storage: decrypt: object .* (failed A1 authentication|shorter than the 86-byte|is not an A1 object|master key id \d+, which is not configured)/,
        );
        expect(result.stdout).toBe('');
        expect(readdirSync(dir)).toEqual([]);
      },
    );

    it('refuses a key file that is not a 32-byte key, naming the file but not its content', () => {
      const keyPath = join(dir, 'short.key');
      const content = randomBytes(24).toString('base64');
      writeFileSync(keyPath, `${content}\n`);
      const out = join(dir, 'out');
      const result = cli(
        'decrypt',
        '--key',
        `1:${keyPath}`,
        vectorPath(manifest.vectors[0]!.ciphertextFile),
        out,
      );
      expectOneLineFailure(result, 1, new RegExp(`key file ${keyPath} decodes to 24 bytes`));
      expect(result.stderr).not.toContain(content);
      expect(existsSync(out)).toBe(false);
    });

    it('refuses a missing input and an existing output', () => {
      expectOneLineFailure(
        cli('decrypt', ...keySetArgs(), join(dir, 'nope'), join(dir, 'out')),
        1,
        /cannot read .*nope \(ENOENT\)/,
      );
      const out = join(dir, 'existing');
      writeFileSync(out, 'keep me');
      const vector = vectorPath(manifest.vectors[0]!.ciphertextFile);
      expectOneLineFailure(
        cli('decrypt', ...keySetArgs(), vector, out),
        1,
        /existing already exists; refusing to overwrite/,
      );
      expect(readFileSync(out, 'utf8')).toBe('keep me');
      expect(cli('decrypt', ...keySetArgs(), '--force', vector, out).status).toBe(0);
      expect(readFileSync(out).length).toBe(manifest.vectors[0]!.plaintextSize);
    });
  });

  describe('interrupted', () => {
    it('removes its temp file on SIGTERM and leaves no OUT', async () => {
      const keyPath = join(dir, 'k.b64');
      cli('keygen', keyPath);
      const fifo = join(dir, 'input.fifo');
      execFileSync('mkfifo', [fifo]);
      const child = spawn(process.execPath, [
        MAIN,
        'encrypt',
        '--key',
        `1:${keyPath}`,
        fifo,
        join(dir, 'out.a1'),
      ]);
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = once(child, 'exit');
      const writer = openSync(fifo, 'w');
      writeSync(writer, randomBytes(100_000));
      while (!readdirSync(dir).some((name) => name.endsWith('.partial'))) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // The child is blocked reading the FIFO, whose writer stays open: it must still end.
      child.kill('SIGTERM');
      const [code, signal] = await exited;
      closeSync(writer);
      expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' });
      expect(stderr).toBe('orthanc-object-storage: interrupted by SIGTERM; no output written\n');
      expect(readdirSync(dir).sort()).toEqual(['input.fifo', 'k.b64']);
    });
  });

  describe('encrypt', () => {
    it('round-trips through decrypt, also as a previous key, and writes A1 with the key id', () => {
      const keyPath = join(dir, 'k.b64');
      expect(cli('keygen', keyPath).status).toBe(0);
      const plainPath = join(dir, 'plain');
      const plain = randomBytes(3 * 1024 * 1024 + 5);
      writeFileSync(plainPath, plain);

      const encryptedPath = join(dir, 'object.a1');
      expect(cli('encrypt', '--key', `4294967295:${keyPath}`, plainPath, encryptedPath)).toEqual({
        status: 0,
        stdout: '',
        stderr: '',
      });
      const encrypted = readFileSync(encryptedPath);
      expect(encrypted.length).toBe(plain.length + 86);
      expect(encrypted.subarray(0, 6).toString('hex')).toBe('4131ffffffff');

      const otherKey = join(dir, 'other.b64');
      expect(cli('keygen', otherKey).status).toBe(0);
      const decryptedPath = join(dir, 'decrypted');
      const keys = ['--key', `7:${otherKey}`, '--key', `4294967295:${keyPath}`];
      expect(cli('decrypt', ...keys, encryptedPath, decryptedPath).status).toBe(0);
      expect(readFileSync(decryptedPath).equals(plain)).toBe(true);

      expectOneLineFailure(
        cli('decrypt', '--key', `7:${otherKey}`, encryptedPath, join(dir, 'x')),
        1,
        /master key id 4294967295, which is not configured \(known ids: 7\)/,
      );
      expect(existsSync(join(dir, 'x'))).toBe(false);
    });

    it('round-trips an empty file', () => {
      const keyPath = join(dir, 'k.b64');
      cli('keygen', keyPath);
      writeFileSync(join(dir, 'empty'), '');
      expect(cli('encrypt', '--key', `1:${keyPath}`, join(dir, 'empty'), join(dir, 'empty.a1')).status).toBe(
        0,
      );
      expect(statSync(join(dir, 'empty.a1')).size).toBe(86);
      expect(cli('decrypt', '--key', `1:${keyPath}`, join(dir, 'empty.a1'), join(dir, 'back')).status).toBe(
        0,
      );
      expect(statSync(join(dir, 'back')).size).toBe(0);
    });

    it('refuses an out-of-range key id and a second --key', () => {
      const keyPath = join(dir, 'k.b64');
      cli('keygen', keyPath);
      expectOneLineFailure(
        cli('encrypt', '--key', `4294967296:${keyPath}`, keyPath, join(dir, 'o')),
        1,
        /master key id 4294967296 .* must be an integer from 0 to 4294967295/,
      );
      expectOneLineFailure(
        cli('encrypt', '--key', `1:${keyPath}`, '--key', `2:${keyPath}`, keyPath, join(dir, 'o')),
        2,
        /exactly one --key ID:PATH, got 2/,
      );
      expect(existsSync(join(dir, 'o'))).toBe(false);
    });
  });
});
