import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { createA1EncryptStream } from '../../crypto/a1-encrypt-stream.js';
import { A1_OVERHEAD } from '../../crypto/a1-format.js';
import { Keyring } from '../../crypto/keyring.js';
import { ContentType, type ListedObject } from '../../storage/contract.js';
import { MemoryBucketClient } from '../../storage/memory-bucket.js';
import { checkObject } from './check-object.js';
import { REPLACEMENT_SUFFIX, rewriteObject } from './rewrite-object.js';

const oldKey = { id: 7, key: randomBytes(32) };
const newKey = { id: 123456789, key: randomBytes(32) };
const keyring = new Keyring(newKey, [oldKey]);

async function a1(plaintext: Buffer): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of Readable.from([plaintext]).pipe(createA1EncryptStream(oldKey)))
    parts.push(part as Buffer);
  return Buffer.concat(parts);
}

async function listed(client: MemoryBucketClient, name: string): Promise<ListedObject> {
  for await (const object of client.list(name)) if (object.name === name) return object;
  throw new Error(`${name} not listed`);
}

async function put(client: MemoryBucketClient, name: string, data: Buffer): Promise<void> {
  await client.put(name, data.length, Readable.from([data]));
}

describe('rewriteObject', () => {
  const plaintext = randomBytes(200_000);
  const uuid = randomUUID();
  const attachment = { uuid, type: ContentType.Dicom };

  it('rewrites an A1 object under the current key in C1, same plaintext, and leaves no replacement', async () => {
    const client = new MemoryBucketClient();
    const name = `${uuid}.dcm.enc`;
    const stored = await a1(plaintext);
    expect(stored.length).toBe(plaintext.length + A1_OVERHEAD);
    await put(client, name, stored);
    const outcome = await rewriteObject({
      client,
      keyring,
      writeFormat: 'C1',
      source: await listed(client, name),
      sourceEncrypted: true,
      attachment,
      target: name,
    });
    expect(outcome).toBe('done');
    const checked = await checkObject(client, { name }, keyring);
    expect([checked.format, checked.keyId, checked.boundTo]).toEqual(['C1', newKey.id, attachment]);
    expect([...client.objects.keys()]).toEqual([name]);
    // Readable without the old key.
    await expect(checkObject(client, { name }, new Keyring(newKey))).resolves.toMatchObject({ format: 'C1' });
  });

  it('does not bring back an object deleted between listing and swap, and removes its replacement', async () => {
    const client = new MemoryBucketClient();
    const name = `${uuid}.dcm.enc`;
    await put(client, name, await a1(plaintext));
    const source = await listed(client, name);
    // Orthanc deletes the attachment while the replacement is being written.
    const realPut = client.put.bind(client);
    client.put = async (objectName, size, body, options) => {
      await realPut(objectName, size, body, options);
      if (objectName.endsWith(REPLACEMENT_SUFFIX)) await client.delete(name);
    };
    const outcome = await rewriteObject({
      client,
      keyring,
      writeFormat: 'C1',
      source,
      sourceEncrypted: true,
      attachment,
      target: name,
    });
    expect(outcome).toBe('gone');
    expect([...client.objects.keys()]).toEqual([]);
  });

  it('leaves the original when it does not authenticate', async () => {
    const client = new MemoryBucketClient();
    const name = `${uuid}.dcm.enc`;
    const damaged = await a1(plaintext);
    damaged[damaged.length - 1]! ^= 1;
    await put(client, name, damaged);
    await expect(
      rewriteObject({
        client,
        keyring,
        writeFormat: 'C1',
        source: await listed(client, name),
        sourceEncrypted: true,
        attachment,
        target: name,
      }),
    ).rejects.toThrow(name);
    expect(client.objects.get(name)?.equals(damaged)).toBe(true);
  });

  it('refuses C1 for a legacy name that does not say its content type, and leaves the original', async () => {
    const client = new MemoryBucketClient();
    const name = `${uuid.slice(0, 2)}/${uuid.slice(2, 4)}/${uuid}`;
    const stored = await a1(plaintext);
    await put(client, name, stored);
    await expect(
      rewriteObject({
        client,
        keyring,
        writeFormat: 'C1',
        source: await listed(client, name),
        sourceEncrypted: true,
        attachment: { uuid, type: undefined },
        target: name,
      }),
    ).rejects.toThrow(/does not say its content type.*WriteFormat A1/);
    expect([...client.objects.keys()]).toEqual([name]);
    expect(client.objects.get(name)?.equals(stored)).toBe(true);
  });

  it('moves a plaintext object to its .enc name, encrypted, and removes the plaintext', async () => {
    const client = new MemoryBucketClient();
    const name = `${uuid}.dcm`;
    await put(client, name, plaintext);
    const outcome = await rewriteObject({
      client,
      keyring,
      writeFormat: 'A1',
      source: await listed(client, name),
      sourceEncrypted: false,
      attachment,
      target: `${name}.enc`,
    });
    expect(outcome).toBe('done');
    expect([...client.objects.keys()]).toEqual([`${name}.enc`]);
    const checked = await checkObject(client, { name: `${name}.enc` }, keyring);
    expect([checked.format, checked.keyId, checked.plaintextSize]).toEqual([
      'A1',
      newKey.id,
      plaintext.length,
    ]);
  });
});
