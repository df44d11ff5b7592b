import { open } from 'node:fs/promises';

/** The first `bytes` bytes of a file (fewer if it is shorter). */
export async function readFileHead(path: string, bytes: number): Promise<Buffer> {
  return (await readFileStart(path, bytes)).head;
}

/**
 * The first `bytes` bytes of a file (fewer if it is shorter), and its size when it is a regular
 * file (not for a pipe or a device, whose size says nothing about what a read yields).
 */
export async function readFileStart(
  path: string,
  bytes: number,
): Promise<{ head: Buffer; size: number | undefined }> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw new Error(`cannot read ${path} (${(error as NodeJS.ErrnoException).code})`);
  }
  try {
    const head = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(head, 0, bytes, 0);
    const info = await handle.stat();
    return { head: head.subarray(0, bytesRead), size: info.isFile() ? info.size : undefined };
  } finally {
    await handle.close();
  }
}
