import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigurationError } from '../errors.js';
import { parseOrthancConfigText, readOrthancConfiguration, substituteEnvironment } from './config-file.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'oos-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('parseOrthancConfigText', () => {
  it('accepts // and /* */ comments, as Orthanc does', () => {
    const text = `{
      // the name
      "Name": "MyOrthanc", /* inline */
      "AwsS3Storage": { "BucketName": "b" /* trailing */ }
    }`;
    expect(parseOrthancConfigText(text, 'orthanc.json')).toEqual({
      Name: 'MyOrthanc',
      AwsS3Storage: { BucketName: 'b' },
    });
  });

  it('reports a syntax error with file, line and column', () => {
    const text = '{\n  "A": 1,\n  "B" 2\n}';
    expect(() => parseOrthancConfigText(text, '/etc/orthanc/orthanc.json')).toThrow(ConfigurationError);
    expect(() => parseOrthancConfigText(text, '/etc/orthanc/orthanc.json')).toThrow(
      /\/etc\/orthanc\/orthanc\.json:3:7: JSON syntax error \(ColonExpected\)/,
    );
  });

  it('refuses a top level that is not an object, and empty content', () => {
    expect(() => parseOrthancConfigText('[1]', 'x.json')).toThrow(
      /x\.json: the top level must be a JSON object/,
    );
    expect(() => parseOrthancConfigText('  ', 'x.json')).toThrow(/x\.json:1:3: JSON syntax error/);
  });
});

describe('substituteEnvironment', () => {
  it('replaces ${NAME} and ${NAME:-default}, unset names by the empty string', () => {
    const env = { BUCKET: 'my-bucket', EMPTY: '' };
    expect(
      substituteEnvironment('"${BUCKET}" "${MISSING}" "${MISSING:-def}" "${EMPTY:-e}" "$BUCKET"', env),
    ).toBe('"my-bucket" "" "def" "e" "$BUCKET"');
  });
});

describe('readOrthancConfiguration', () => {
  it('reads one file, with environment substitution', async () => {
    const file = join(dir, 'single.json');
    process.env.OOS_TEST_BUCKET = 'from-env';
    await writeFile(file, '{ "AwsS3Storage": { "BucketName": "${OOS_TEST_BUCKET}" } } // done');
    expect(await readOrthancConfiguration(file)).toEqual({ AwsS3Storage: { BucketName: 'from-env' } });
    delete process.env.OOS_TEST_BUCKET;
  });

  it('merges the .json files of a folder at top level and ignores other files', async () => {
    const folder = await mkdtemp(join(dir, 'folder-'));
    await writeFile(join(folder, 'a.json'), '{ "Name": "X", /* c */ "StorageDirectory": "/db" }');
    await writeFile(join(folder, 'b.JSON'), '{ "AwsS3Storage": { "BucketName": "b" } }');
    await writeFile(join(folder, 'notes.txt'), 'not json');
    expect(await readOrthancConfiguration(folder)).toEqual({
      Name: 'X',
      StorageDirectory: '/db',
      AwsS3Storage: { BucketName: 'b' },
    });
  });

  it('refuses a key defined in two files of a folder, naming both', async () => {
    const folder = await mkdtemp(join(dir, 'dup-'));
    await writeFile(join(folder, 'a.json'), '{ "AwsS3Storage": {} }');
    await writeFile(join(folder, 'b.json'), '{ "AwsS3Storage": {} }');
    await expect(readOrthancConfiguration(folder)).rejects.toThrow(
      /"AwsS3Storage" is defined in both .*a\.json and .*b\.json/,
    );
  });

  it('names a missing path and a broken file', async () => {
    await expect(readOrthancConfiguration(join(dir, 'nope.json'))).rejects.toThrow(
      /cannot read configuration .*nope\.json/,
    );
    const broken = join(dir, 'broken.json');
    await writeFile(broken, '{ "A": }');
    await expect(readOrthancConfiguration(broken)).rejects.toThrow(/broken\.json:1:8: JSON syntax error/);
  });
});
