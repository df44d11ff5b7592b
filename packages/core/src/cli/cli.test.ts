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

  describe('reencrypt against a configuration', () => {
    const configWith = (encryption: Record<string, unknown> | undefined): string => {
      const key = join(dir, 'key-5.b64');
      writeFileSync(key, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
      const section: Record<string, unknown> = {
        BucketName: 'b',
        Region: 'us-east-1',
        Endpoint: 'http://127.0.0.1:9',
        AccessKey: 'a',
        SecretKey: 's',
      };
      if (encryption !== undefined)
        section.StorageEncryption = { Enable: true, MasterKey: [5, key], ...encryption };
      const file = join(dir, `reencrypt-${randomBytes(4).toString('hex')}.json`);
      writeFileSync(file, JSON.stringify({ AwsS3Storage: section }));
      return file;
    };

    it('refuses to retire the current key, A1 to A1, and a configuration without encryption', () => {
      expectOneLineFailure(
        cli('reencrypt', '--config', configWith({}), '--retire', '5'),
        2,
        /--retire 5: that is the current master key/,
      );
      expectOneLineFailure(
        cli('reencrypt', '--config', configWith({ WriteFormat: 'A1' }), '--format', 'A1'),
        2,
        /WriteFormat is A1/,
      );
      expectOneLineFailure(
        cli('reencrypt', '--config', configWith(undefined), '--plaintext'),
        1,
        /StorageEncryption must be enabled/,
      );
    });
  });

  describe('help', () => {
    it('lists the commands at top level', () => {
      const result = cli('--help');
      expect(result.status).toBe(0);
      for (const name of ['keygen', 'encrypt', 'decrypt', 'inspect', 'verify', 'reencrypt'])
        expect(result.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    });

    it.each(['keygen', 'encrypt', 'decrypt', 'inspect', 'verify', 'reencrypt'])(
      'has --help on %s',
      (name) => {
        const result = cli(name, '--help');
        expect(result.status).toBe(0);
        expect(result.stdout).toMatch(new RegExp(`^Usage: orthanc-object-storage ${name} `));
        expect(result.stderr).toBe('');
      },
    );

    it('refuses no command, an unknown command and unknown options as usage errors', () => {
      expectOneLineFailure(cli(), 2, /no command given/);
      expectOneLineFailure(
        cli('frobnicate'),
        2,
        /unknown command 'frobnicate' \(commands: keygen, encrypt, decrypt, inspect, verify, reencrypt\)/,
      );
      expectOneLineFailure(cli('verify'), 2, /verify: --config FILE\|DIR is required/);
      expectOneLineFailure(cli('reencrypt', '--config', dir), 2, /reencrypt: say which objects to rewrite/);
      expectOneLineFailure(
        cli('reencrypt', '--config', dir, '--format', 'C1'),
        2,
        /reencrypt: --format C1: only A1 objects can be selected/,
      );
      expectOneLineFailure(cli('reencrypt', '--config', dir, '--retire', 'x'), 2, /reencrypt: .*--retire x/);
      expectOneLineFailure(
        cli('verify', '--config', dir, '--delete-orphans'),
        2,
        /verify: --delete-orphans needs --orthanc/,
      );
      expectOneLineFailure(
        cli('verify', '--config', dir),
        1,
        /verify: .*expected exactly one of the sections/,
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
          /^orthanc-object-storage: decrypt: object .* (failed A1 authentication|shorter than the 86-byte|is not an A1 object|is not a C1 or A1 object|master key id \d+, which is not configured)/,
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
        '--format',
        'A1',
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

  describe('encrypt --format A1', () => {
    it('round-trips through decrypt, also as a previous key, and writes A1 with the key id', () => {
      const keyPath = join(dir, 'k.b64');
      expect(cli('keygen', keyPath).status).toBe(0);
      const plainPath = join(dir, 'plain');
      const plain = randomBytes(3 * 1024 * 1024 + 5);
      writeFileSync(plainPath, plain);

      const encryptedPath = join(dir, 'object.a1');
      expect(
        cli('encrypt', '--format', 'A1', '--key', `4294967295:${keyPath}`, plainPath, encryptedPath),
      ).toEqual({
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
      expect(
        cli('encrypt', '--format', 'A1', '--key', `1:${keyPath}`, join(dir, 'empty'), join(dir, 'empty.a1'))
          .status,
      ).toBe(0);
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
        cli('encrypt', '--format', 'A1', '--key', `4294967296:${keyPath}`, keyPath, join(dir, 'o')),
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

  describe('C1', () => {
    const UUID = '8f0b3a4e-0c1d-4e2f-9a3b-5c6d7e8f9a0b';
    const c1Manifest = JSON.parse(
      readFileSync(
        resolve(dirname(fileURLToPath(import.meta.url)), '../../fixtures/c1-vectors/manifest.json'),
        'utf8',
      ),
    ) as {
      vectors: { name: string; keyId: number; objectFile: string; plaintextFile: string; uuid: string }[];
      negative: { name: string; file: string; messagePattern: string; keyFile?: string }[];
    };
    const c1Dir = resolve(dirname(fileURLToPath(import.meta.url)), '../../fixtures/c1-vectors');
    const c1Keys = [
      '--key',
      `1:${join(c1Dir, 'keys/key-1.b64')}`,
      '--key',
      `4000000000:${join(c1Dir, 'keys/key-4000000000.b64')}`,
    ];

    it('encrypts to C1 by default, binding the attachment named by OUT, and decrypts it back', () => {
      const keyPath = join(dir, 'k.b64');
      cli('keygen', keyPath);
      const plain = randomBytes(200_000);
      writeFileSync(join(dir, 'plain'), plain);
      const objectPath = join(dir, `${UUID}.dcm.enc`);
      expect(cli('encrypt', '--key', `9:${keyPath}`, join(dir, 'plain'), objectPath)).toEqual({
        status: 0,
        stdout: '',
        stderr: '',
      });
      const object = readFileSync(objectPath);
      expect(object.subarray(0, 2).toString()).toBe('C1');
      expect(object.length).toBe(105 + 200_000 + 16 * 4);
      expect(object.subarray(69, 105).toString()).toBe(UUID);
      expect(object.readUInt32LE(65)).toBe(1);

      expect(cli('decrypt', '--key', `9:${keyPath}`, objectPath, join(dir, 'back')).status).toBe(0);
      expect(readFileSync(join(dir, 'back')).equals(plain)).toBe(true);
      expect(
        cli(
          'decrypt',
          '--key',
          `9:${keyPath}`,
          '--uuid',
          UUID,
          '--content-type',
          'dicom',
          objectPath,
          join(dir, 'back2'),
        ).status,
      ).toBe(0);
      expectOneLineFailure(
        cli(
          'decrypt',
          '--key',
          `9:${keyPath}`,
          '--uuid',
          UUID,
          '--content-type',
          'json',
          objectPath,
          join(dir, 'x'),
        ),
        1,
        /holds attachment 8f0b3a4e-0c1d-4e2f-9a3b-5c6d7e8f9a0b \(content type 1, DICOM\), not the requested attachment .* \(content type 2, DICOM as JSON\)/,
      );
      expect(existsSync(join(dir, 'x'))).toBe(false);

      const explicit = join(dir, 'explicit.c1');
      expect(
        cli(
          'encrypt',
          '--key',
          `9:${keyPath}`,
          '--uuid',
          UUID,
          '--content-type',
          '3',
          join(dir, 'plain'),
          explicit,
        ).status,
      ).toBe(0);
      expect(readFileSync(explicit).readUInt32LE(65)).toBe(3);
    });

    it('refuses C1 without an attachment, and --uuid with A1', () => {
      const keyPath = join(dir, 'k.b64');
      cli('keygen', keyPath);
      expectOneLineFailure(
        cli('encrypt', '--key', `1:${keyPath}`, keyPath, join(dir, 'o')),
        2,
        /C1 binds the object to its attachment: give --uuid and --content-type/,
      );
      expectOneLineFailure(
        cli(
          'encrypt',
          '--key',
          `1:${keyPath}`,
          '--uuid',
          'short',
          '--content-type',
          'dicom',
          keyPath,
          join(dir, 'o'),
        ),
        2,
        /--uuid must be the attachment's 36-character uuid/,
      );
      expectOneLineFailure(
        cli('encrypt', '--format', 'A1', '--key', `1:${keyPath}`, '--uuid', UUID, keyPath, join(dir, 'o')),
        2,
        /--uuid and --content-type are for C1/,
      );
      expectOneLineFailure(
        cli('encrypt', '--format', 'B2', '--key', `1:${keyPath}`, keyPath, join(dir, 'o')),
        2,
        /--format must be C1 or A1/,
      );
      expect(existsSync(join(dir, 'o'))).toBe(false);
    });

    it('decrypts every C1 vector byte-exact and refuses every negative one with one line and no OUT', () => {
      for (const vector of c1Manifest.vectors) {
        const out = join(dir, `${vector.name}.out`);
        expect(cli('decrypt', ...c1Keys, join(c1Dir, vector.objectFile), out).status).toBe(0);
        expect(readFileSync(out).equals(readFileSync(join(c1Dir, vector.plaintextFile)))).toBe(true);
      }
      for (const vector of c1Manifest.negative.filter((v) => !v.name.startsWith('other-attachment'))) {
        const keys = vector.keyFile === undefined ? c1Keys : ['--key', `1:${join(c1Dir, vector.keyFile)}`];
        const out = join(dir, `${vector.name}.out`);
        expectOneLineFailure(
          cli('decrypt', ...keys, join(c1Dir, vector.file), out),
          1,
          new RegExp(vector.messagePattern),
        );
        expect(existsSync(out)).toBe(false);
      }
    });

    it('inspect prints format, key id, sizes, chunks and attachment, never key material', () => {
      const vector = c1Manifest.vectors.find((v) => v.name === 'four-chunks-big-key-id')!;
      const file = join(c1Dir, vector.objectFile);
      const result = cli('inspect', file);
      expect(result.status).toBe(0);
      expect(result.stdout).toMatch(/^format: +C1$/m);
      expect(result.stdout).toMatch(/^keyId: +4000000000$/m);
      expect(result.stdout).toMatch(/^plaintextSize: +200000$/m);
      expect(result.stdout).toMatch(/^objectSize: +200169$/m);
      expect(result.stdout).toMatch(/^chunkCount: +4$/m);
      expect(result.stdout).toMatch(/^sizeCheck: +ok/m);
      expect(result.stdout).toContain(`attachment ${vector.uuid} (content type 2, DICOM as JSON)`);
      const object = readFileSync(file);
      const keyText = readFileSync(join(c1Dir, 'keys/key-4000000000.b64'), 'utf8').trim();
      for (const secret of [
        keyText,
        object.subarray(25, 65).toString('hex'),
        object.subarray(25, 65).toString('base64'),
      ]) {
        expect(result.stdout).not.toContain(secret);
      }
      const json = JSON.parse(
        cli('inspect', '--json', join(c1Dir, 'negative/truncated-final-chunk.c1')).stdout,
      ) as Record<string, unknown>;
      expect(json).toMatchObject({ format: 'C1', keyId: 1, chunkCount: 3 });
      expect(json.sizeCheck).toMatch(/MISMATCH.*truncated/);

      const a1 = manifest.vectors[0]!;
      const a1Result = JSON.parse(cli('inspect', '--json', vectorPath(a1.ciphertextFile)).stdout) as Record<
        string,
        unknown
      >;
      expect(a1Result).toMatchObject({ format: 'A1', keyId: a1.keyId, plaintextSize: a1.plaintextSize });
      writeFileSync(join(dir, 'plain.dcm'), Buffer.alloc(200));
      expectOneLineFailure(
        cli('inspect', join(dir, 'plain.dcm')),
        1,
        /is not a C1 or A1 object: its version bytes are 0x0000/,
      );
    });
  });
});
