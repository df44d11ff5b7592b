import { readFile } from 'node:fs/promises';
import { UsageError } from '../command.js';

/** One attachment row of Orthanc's index. */
export interface IndexedAttachment {
  readonly instance: string;
  /** Orthanc's attachment name, e.g. `dicom`. */
  readonly attachment: string;
  readonly uuid: string;
  readonly type: number;
  /** What Orthanc stored (CompressedSize): the plaintext size of our object. */
  readonly size: number;
}

/**
 * Credentials for Orthanc's REST API: ORTHANC_USERNAME and ORTHANC_PASSWORD, or a file holding
 * `user:password` (never argv, which other users can read in /proc).
 */
export async function orthancAuthorization(credentialsFile: string | undefined): Promise<string | undefined> {
  let pair: string | undefined;
  if (credentialsFile !== undefined) {
    pair = (await readFile(credentialsFile, 'utf8')).trim();
    if (!pair.includes(':')) {
      throw new UsageError(`${credentialsFile} must hold one line "user:password"`);
    }
  } else if (process.env.ORTHANC_USERNAME !== undefined) {
    pair = `${process.env.ORTHANC_USERNAME}:${process.env.ORTHANC_PASSWORD ?? ''}`;
  }
  return pair === undefined ? undefined : `Basic ${Buffer.from(pair).toString('base64')}`;
}

/** Read-only walk over Orthanc's index through its REST API. */
export class OrthancIndex {
  constructor(
    private readonly baseUrl: string,
    private readonly authorization: string | undefined,
  ) {}

  private async get<T>(uri: string): Promise<T> {
    const response = await fetch(this.baseUrl.replace(/\/$/, '') + uri, {
      headers: this.authorization === undefined ? {} : { Authorization: this.authorization },
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`Orthanc ${this.baseUrl}: GET ${uri} answered HTTP ${response.status}`);
    }
    return (await response.json()) as T;
  }

  /** Every instance's attachments, a page of instances at a time. */
  async *attachments(pageSize = 1000): AsyncIterable<IndexedAttachment> {
    for (let since = 0; ; since += pageSize) {
      const instances = await this.get<string[]>(`/instances?since=${since}&limit=${pageSize}`);
      for (const instance of instances) {
        const names = await this.get<string[]>(`/instances/${instance}/attachments`);
        for (const attachment of names) {
          const info = await this.get<{ Uuid: string; ContentType: number; CompressedSize: number }>(
            `/instances/${instance}/attachments/${attachment}/info`,
          );
          yield { instance, attachment, uuid: info.Uuid, type: info.ContentType, size: info.CompressedSize };
        }
      }
      if (instances.length < pageSize) return;
    }
  }
}
