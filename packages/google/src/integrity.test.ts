import { createHash } from 'node:crypto';
import { IntegrityError } from '@orthanc-object-storage/core';
import { Crc32c } from './crc32c.js';
import { VerifyingStream, parseGoogHash } from './integrity.js';
import { bodyOf, patterned, readAll } from './__tests__/fixtures.js';

function crc(data: Buffer): string {
  const c = new Crc32c();
  c.update(data);
  return c.digestBase64();
}

describe('Crc32c', () => {
  it('matches the standard check value of "123456789" (0xE3069283)', () => {
    expect(Buffer.from(crc(Buffer.from('123456789')), 'base64').readUInt32BE()).toBe(0xe3069283);
  });

  it('gives the same value in one piece or many', () => {
    const data = patterned(100_003);
    const pieces = new Crc32c();
    for (let at = 0; at < data.length; at += 977) pieces.update(data.subarray(at, at + 977));
    expect(pieces.digestBase64()).toBe(crc(data));
  });
});

describe('VerifyingStream', () => {
  const data = patterned(300_000, 5);
  const md5 = createHash('md5').update(data).digest('base64');

  it('passes good bytes (MD5 or CRC32C)', async () => {
    expect(
      (await readAll(bodyOf(data).pipe(new VerifyingStream('x', data.length, { md5 })))).equals(data),
    ).toBe(true);
    const onlyCrc = new VerifyingStream('x', data.length, { crc32c: crc(data) });
    expect((await readAll(bodyOf(data).pipe(onlyCrc))).equals(data)).toBe(true);
  });

  it.each([
    ['md5', { md5 }],
    ['crc32c', { crc32c: crc(data) }],
  ])('fails the stream when one byte differs (%s)', async (_label, expected) => {
    const corrupted = Buffer.from(data);
    corrupted[123_456] = corrupted[123_456]! ^ 1;
    await expect(
      readAll(bodyOf(corrupted).pipe(new VerifyingStream('obj', data.length, expected))),
    ).rejects.toThrow(IntegrityError);
  });

  it('fails on a short or long body', async () => {
    await expect(
      readAll(bodyOf(data.subarray(1)).pipe(new VerifyingStream('obj', data.length, { md5 }))),
    ).rejects.toThrow(/got 299999 bytes, expected 300000/);
    await expect(readAll(bodyOf(data).pipe(new VerifyingStream('obj', data.length - 1, {})))).rejects.toThrow(
      IntegrityError,
    );
  });

  it('parses x-goog-hash', () => {
    expect(parseGoogHash('crc32c=n03x6A==,md5=Ojk9c3dhfxgoKVVHYwFbHQ==')).toEqual({
      crc32c: 'n03x6A==',
      md5: 'Ojk9c3dhfxgoKVVHYwFbHQ==',
    });
    expect(parseGoogHash(['crc32c=AAAAAA==', 'md5=BBBB'])).toEqual({ crc32c: 'AAAAAA==', md5: 'BBBB' });
  });
});
