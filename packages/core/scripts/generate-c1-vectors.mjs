#!/usr/bin/env node
// Regenerates fixtures/c1-vectors with our C1 writer and fixed randomness (run `pnpm build` first):
//   node scripts/generate-c1-vectors.mjs
// Every random value (keys, nonce prefixes, data keys, plaintexts) is SHA-256 of a fixed label,
// so the output is the same on every run; the tests check the writer reproduces it byte-exact.
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { fileURLToPath } from 'node:url';
import { createC1EncryptStreamWith } from '../dist/crypto/c1-encrypt-stream.js';
import { C1_HEADER_SIZE, C1_TAG_SIZE } from '../dist/crypto/c1-format.js';

const OUT = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/c1-vectors');

/** `length` deterministic bytes: SHA-256(label || counter) blocks. */
function fixedBytes(label, length) {
  const blocks = [];
  for (let i = 0; blocks.length * 32 < length; i++) {
    blocks.push(createHash('sha256').update(`${label}/${i}`).digest());
  }
  return Buffer.concat(blocks).subarray(0, length);
}

const keys = [
  { keyId: 1, keyFile: 'keys/key-1.b64', key: fixedBytes('c1-vectors master key 1', 32) },
  {
    keyId: 4000000000,
    keyFile: 'keys/key-4000000000.b64',
    key: fixedBytes('c1-vectors master key 4000000000', 32),
  },
];
const wrongKey = { keyId: 1, keyFile: 'keys/key-1-wrong.b64', key: fixedBytes('c1-vectors wrong key 1', 32) };

const vectors = [
  { name: 'empty', keyId: 1, size: 0, type: 1, uuid: '00000000-0000-4000-8000-000000000000' },
  { name: 'one-byte', keyId: 1, size: 1, type: 1, uuid: '7f6c0d2e-1a3b-4c5d-8e9f-0a1b2c3d4e5f' },
  { name: 'one-full-chunk', keyId: 1, size: 65536, type: 1, uuid: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d' },
  { name: 'two-chunks', keyId: 1, size: 65537, type: 3, uuid: '0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0' },
  {
    name: 'four-chunks-big-key-id',
    keyId: 4000000000,
    size: 200000,
    type: 2,
    uuid: 'c0ffee00-1234-4567-89ab-cdef01234567',
  },
  {
    name: 'small-chunks',
    keyId: 1,
    size: 3000,
    type: 0,
    uuid: 'deadbeef-0000-4111-8222-333344445555',
    chunkSize: 1024,
  },
];

rmSync(OUT, { recursive: true, force: true });
for (const sub of ['keys', 'plain', 'objects', 'negative']) mkdirSync(join(OUT, sub), { recursive: true });
for (const k of [...keys, wrongKey]) writeFileSync(join(OUT, k.keyFile), `${k.key.toString('base64')}\n`);

const manifestVectors = [];
const objects = new Map();
for (const v of vectors) {
  const master = { id: v.keyId, key: keys.find((k) => k.keyId === v.keyId).key };
  const plaintext = fixedBytes(`c1-vectors plaintext ${v.name}`, v.size);
  const noncePrefix = fixedBytes(`c1-vectors nonce prefix ${v.name}`, 7);
  const dataKey = fixedBytes(`c1-vectors data key ${v.name}`, 32);
  const stream = createC1EncryptStreamWith(master, noncePrefix, dataKey, {
    size: v.size,
    attachment: { uuid: v.uuid, type: v.type },
    chunkSize: v.chunkSize,
  });
  const object = await buffer(Readable.from([plaintext]).pipe(stream));
  objects.set(v.name, object);
  const chunkSize = v.chunkSize ?? 65536;
  writeFileSync(join(OUT, `plain/${v.name}.bin`), plaintext);
  writeFileSync(join(OUT, `objects/${v.name}.c1`), object);
  manifestVectors.push({
    name: v.name,
    keyId: v.keyId,
    uuid: v.uuid,
    contentType: v.type,
    chunkSize,
    chunkCount: Math.max(1, Math.ceil(v.size / chunkSize)),
    noncePrefix: noncePrefix.toString('hex'),
    dataKey: dataKey.toString('hex'),
    plaintextFile: `plain/${v.name}.bin`,
    objectFile: `objects/${v.name}.c1`,
    plaintextSize: v.size,
    objectSize: object.length,
    plaintextSha256: createHash('sha256').update(plaintext).digest('hex'),
    objectSha256: createHash('sha256').update(object).digest('hex'),
  });
}

// Negative vectors, all from 'small-chunks' (records of 1040, 1040 and 968 bytes after the header).
const base = objects.get('small-chunks');
const record = 1024 + C1_TAG_SIZE;
const at = (chunk) => C1_HEADER_SIZE + chunk * record;
const flip = (offset) => {
  const copy = Buffer.from(base);
  copy[offset] ^= 0x01;
  return copy;
};
const withHeader = (mutate) => {
  const copy = Buffer.from(base);
  mutate(copy);
  return copy;
};
const swapped = Buffer.concat([
  base.subarray(0, at(0)),
  base.subarray(at(1), at(2)),
  base.subarray(at(0), at(1)),
  base.subarray(at(2)),
]);
const negative = [
  [
    'flipped-ciphertext-byte',
    flip(at(1) + 10),
    'one bit of chunk 1 ciphertext flipped',
    'chunk 1 of 3 fails C1 authentication',
  ],
  [
    'flipped-tag-byte',
    flip(at(1) - 1),
    'one bit of chunk 0 tag flipped',
    'chunk 0 of 3 fails C1 authentication',
  ],
  [
    'flipped-header-uuid',
    flip(70),
    'one bit of the header uuid flipped',
    'chunk 0 of 3 fails C1 authentication',
  ],
  [
    'flipped-header-nonce-prefix',
    flip(20),
    'one bit of the nonce prefix flipped',
    'chunk 0 of 3 fails C1 authentication',
  ],
  ['swapped-chunks', swapped, 'chunks 0 and 1 swapped', 'chunk 0 of 3 fails C1 authentication'],
  ['truncated-final-chunk', base.subarray(0, at(2)), 'final chunk removed', 'truncated'],
  ['truncated-one-byte', base.subarray(0, base.length - 1), 'last byte removed', 'truncated'],
  ['truncated-header', base.subarray(0, 60), 'cut inside the header', 'shorter than the 105-byte C1 header'],
  ['extended', Buffer.concat([base, Buffer.from([0])]), 'one byte appended', 'extra bytes'],
  [
    'plaintext-size-changed',
    withHeader((b) => b.writeBigUInt64LE(2048n, 10)),
    'header plaintext size 3000 -> 2048',
    '(extra bytes|fails C1 authentication)',
  ],
  [
    'chunk-size-too-small',
    withHeader((b) => b.writeUInt32LE(512, 6)),
    'header chunk size 1024 -> 512',
    'chunk size 512 is outside',
  ],
  [
    'unknown-key-id',
    withHeader((b) => b.writeUInt32LE(99, 2)),
    'header key id 1 -> 99',
    'master key id 99, which is not configured',
  ],
  [
    'wrapped-key-damaged',
    flip(30),
    'one bit of the wrapped data key flipped',
    'data key does not unwrap under master key id 1',
  ],
  [
    'version-c2',
    withHeader((b) => b.write('C2', 0, 'latin1')),
    "version bytes 'C1' -> 'C2'",
    "version bytes are 'C2'",
  ],
].map(([name, bytes, mutation, messagePattern]) => ({ name, bytes, mutation, messagePattern }));
negative.push({
  name: 'wrong-master-key',
  bytes: base,
  mutation: 'intact, but read with another key file under the same id (keys/key-1-wrong.b64)',
  messagePattern: 'data key does not unwrap under master key id 1',
  keyFile: wrongKey.keyFile,
});
negative.push({
  name: 'other-attachment',
  bytes: base,
  mutation: 'intact, but read as another attachment (as if copied over its object name)',
  messagePattern: `holds attachment deadbeef-0000-4111-8222-333344445555 \\(content type 0, unknown\\), not the requested attachment 99999999-0000-4111-8222-333344445555`,
  readAs: { uuid: '99999999-0000-4111-8222-333344445555', contentType: 0 },
});
for (const n of negative) writeFileSync(join(OUT, `negative/${n.name}.c1`), n.bytes);

const manifest = {
  format:
    'C1: chunked AES-256-GCM (STREAM), AES-256 Key Wrap, bound to the attachment; see docs/c1-format.md',
  generatedBy:
    'packages/core/scripts/generate-c1-vectors.mjs (our writer, fixed randomness: SHA-256 of labels)',
  keys: [...keys, wrongKey].map(({ keyId, keyFile }) => ({ keyId, keyFile })),
  keySet: { current: 1, previous: [4000000000] },
  vectors: manifestVectors,
  negative: negative.map(({ name, mutation, messagePattern, keyFile, readAs }) => ({
    name,
    file: `negative/${name}.c1`,
    of: 'small-chunks',
    mutation,
    messagePattern,
    ...(keyFile && { keyFile }),
    ...(readAs && { readAs }),
  })),
};
writeFileSync(join(OUT, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
console.log(`wrote ${manifestVectors.length} vectors and ${negative.length} negative vectors to ${OUT}`);
