import { readFile } from 'node:fs/promises';
import { KeyError } from '../errors.js';
import type { MasterKeyRef } from '../config/settings.js';
import { A1_KEY_SIZE, MAX_KEY_ID, type MasterKey } from './a1-format.js';

const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The master key new objects are encrypted with, and every key accepted for decryption, by id. */
export class Keyring {
  private readonly byId = new Map<number, MasterKey>();

  /** Throws `KeyError` when two keys share an id. */
  constructor(
    readonly current: MasterKey,
    previous: readonly MasterKey[] = [],
  ) {
    for (const key of [current, ...previous]) {
      checkKeyId(key.id);
      if (this.byId.has(key.id)) {
        throw new KeyError(`master key id ${key.id} is configured more than once; each id must be unique`);
      }
      this.byId.set(key.id, key);
    }
  }

  /** The master key with this id; `KeyError` naming the id and the known ids when there is none. */
  get(id: number): MasterKey {
    const key = this.byId.get(id);
    if (key === undefined) {
      throw new KeyError(`no master key with id ${id} is configured (known ids: ${this.ids().join(', ')})`);
    }
    return key;
  }

  has(id: number): boolean {
    return this.byId.has(id);
  }

  ids(): number[] {
    return [...this.byId.keys()];
  }
}

/** Throws `KeyError` unless `id` is a uint32 (0..4294967295), as A1 stores it. */
export function checkKeyId(id: unknown, where?: string): asserts id is number {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > MAX_KEY_ID) {
    const context = where === undefined ? '' : ` (${where})`;
    throw new KeyError(
      `master key id ${String(id)}${context} is invalid: it must be an integer from 0 to ${MAX_KEY_ID}`,
    );
  }
}

/**
 * Decode a key file as `openssl rand -base64 32` writes it: strict base64 of exactly 32 bytes,
 * optionally followed by a line ending (LF or CRLF). Messages name the file, never its content.
 */
export function decodeKeyFile(content: Buffer, path: string): Buffer {
  const text = content.toString('latin1').replace(/\r?\n$/, '');
  if (!STRICT_BASE64.test(text)) {
    throw new KeyError(
      `key file ${path} is not valid base64 (expected one line of base64 for a 32-byte key, as written by ` +
        '`openssl rand -base64 32`)',
    );
  }
  const key = Buffer.from(text, 'base64');
  if (key.length !== A1_KEY_SIZE || key.toString('base64') !== text) {
    throw new KeyError(
      `key file ${path} decodes to ${key.length} bytes; a master key must be exactly ${A1_KEY_SIZE} bytes ` +
        '(create one with `openssl rand -base64 32` or `orthanc-object-storage keygen`)',
    );
  }
  return key;
}

/** Read and decode one key file; `KeyError` naming the path when it is unreadable or invalid. */
export async function loadMasterKey(ref: MasterKeyRef): Promise<MasterKey> {
  checkKeyId(ref.id, `for key file ${ref.path}`);
  let content: Buffer;
  try {
    content = await readFile(ref.path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new KeyError(`cannot read key file ${ref.path} (${code})`, { cause: error });
  }
  return { id: ref.id, key: decodeKeyFile(content, ref.path) };
}

/** Load the current master key and the previous ones into a keyring. */
export async function loadKeyring(
  current: MasterKeyRef,
  previous: readonly MasterKeyRef[],
): Promise<Keyring> {
  const pathById = new Map<number, string>();
  for (const ref of [current, ...previous]) {
    const other = pathById.get(ref.id);
    if (other !== undefined) {
      throw new KeyError(
        `master key id ${ref.id} is given twice (${other} and ${ref.path}); each id must name one key`,
      );
    }
    pathById.set(ref.id, ref.path);
  }
  const keys = await Promise.all([current, ...previous].map(loadMasterKey));
  const [first, ...rest] = keys;
  return new Keyring(first!, rest);
}
