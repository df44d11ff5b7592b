import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import http from 'node:http';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';

export interface UploadResult {
  readonly ID: string;
  readonly ParentPatient: string;
  readonly ParentStudy: string;
  readonly ParentSeries: string;
  readonly Status: string;
}

export interface Statistics {
  readonly CountInstances: number;
  readonly CountPatients: number;
  readonly TotalDiskSize: string;
  readonly TotalUncompressedSize: string;
}

export interface PluginInfo {
  readonly ID: string;
  readonly Version: string;
  readonly Description?: string;
}

/** An HTTP answer Orthanc gave with an unexpected status. */
export class OrthancHttpError extends Error {
  constructor(
    readonly method: string,
    readonly uri: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`${method} ${uri} answered HTTP ${status}: ${body.slice(0, 300)}`);
    this.name = 'OrthancHttpError';
  }
}

// Uploads go through node:http so that a file streams with its Content-Length (CivetWeb
// wants it); everything else uses fetch.
const uploadAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });

/** The small part of Orthanc's REST API the suite needs. */
export class OrthancClient {
  constructor(readonly baseUrl: string) {}

  /** True when /system answers 200. */
  async isUp(): Promise<boolean> {
    try {
      const response = await fetch(`${this.baseUrl}/system`, { signal: AbortSignal.timeout(2000) });
      await response.body?.cancel();
      return response.ok;
    } catch {
      return false;
    }
  }

  async getJson<T>(uri: string): Promise<T> {
    const response = await fetch(this.baseUrl + uri);
    const text = await response.text();
    if (!response.ok) throw new OrthancHttpError('GET', uri, response.status, text);
    return JSON.parse(text) as T;
  }

  system(): Promise<Record<string, unknown>> {
    return this.getJson('/system');
  }

  plugins(): Promise<string[]> {
    return this.getJson('/plugins');
  }

  /** Plugin IDs without Orthanc's own "explorer.js" entry, which is always listed. */
  async loadedPlugins(): Promise<string[]> {
    return (await this.plugins()).filter((id) => id !== 'explorer.js');
  }

  plugin(id: string): Promise<PluginInfo> {
    return this.getJson(`/plugins/${encodeURIComponent(id)}`);
  }

  statistics(): Promise<Statistics> {
    return this.getJson('/statistics');
  }

  instances(): Promise<string[]> {
    return this.getJson('/instances');
  }

  tags(instanceId: string): Promise<Record<string, { Name: string; Type: string; Value: unknown }>> {
    return this.getJson(`/instances/${instanceId}/tags`);
  }

  simplifiedTags(instanceId: string): Promise<Record<string, unknown>> {
    return this.getJson(`/instances/${instanceId}/simplified-tags`);
  }

  /** The attachment uuid Orthanc gave the instance's DICOM file: the backend's object key. */
  async attachmentUuid(instanceId: string, attachment = 'dicom'): Promise<string> {
    const info = await this.getJson<{ Uuid: string }>(
      `/instances/${instanceId}/attachments/${attachment}/info`,
    );
    return info.Uuid;
  }

  /** Upload a DICOM file from disk, streamed. Throws OrthancHttpError on a non-2xx answer. */
  uploadFile(file: string): Promise<UploadResult> {
    const size = statSync(file).size;
    const url = new URL('/instances', this.baseUrl);
    return new Promise((resolve, reject) => {
      const request = http.request(
        url,
        {
          method: 'POST',
          agent: uploadAgent,
          headers: { 'Content-Type': 'application/dicom', 'Content-Length': size },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            const status = response.statusCode ?? 0;
            if (status < 200 || status >= 300)
              reject(new OrthancHttpError('POST', '/instances', status, body));
            else resolve(JSON.parse(body) as UploadResult);
          });
        },
      );
      request.on('error', reject);
      pipeline(createReadStream(file), request).catch(reject);
    });
  }

  /** Upload bytes held in memory (small generated files). */
  async uploadBytes(bytes: Uint8Array): Promise<UploadResult> {
    const response = await fetch(`${this.baseUrl}/instances`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/dicom' },
      body: bytes,
    });
    const text = await response.text();
    if (!response.ok) throw new OrthancHttpError('POST', '/instances', response.status, text);
    return JSON.parse(text) as UploadResult;
  }

  /** Stream a GET answer to `sink`; throws OrthancHttpError on a non-2xx answer. */
  async download(uri: string, sink: Writable): Promise<void> {
    // identity: fetch asks for gzip by default and Orthanc would compress on the fly.
    const response = await fetch(this.baseUrl + uri, { headers: { 'Accept-Encoding': 'identity' } });
    if (!response.ok || response.body === null) {
      throw new OrthancHttpError('GET', uri, response.status, await response.text());
    }
    await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), sink);
  }

  /** sha256 (hex) and size of /instances/{id}/file, streamed. */
  async instanceFileSha256(instanceId: string): Promise<{ sha256: string; size: number }> {
    const hash = createHash('sha256');
    let size = 0;
    await this.download(
      `/instances/${instanceId}/file`,
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          size += chunk.length;
          callback();
        },
      }),
    );
    return { sha256: hash.digest('hex'), size };
  }

  async downloadInstanceFile(instanceId: string, file: string): Promise<void> {
    await this.download(`/instances/${instanceId}/file`, createWriteStream(file));
  }

  /** A GET answer's bytes; throws OrthancHttpError on a non-2xx answer. */
  async getBytes(uri: string): Promise<Buffer> {
    const answer = await this.getRaw(uri);
    if (answer.status < 200 || answer.status >= 300) {
      throw new OrthancHttpError('GET', uri, answer.status, answer.body.toString('utf8'));
    }
    return answer.body;
  }

  /** A GET answer's status and bytes, whatever the status. */
  async getRaw(uri: string): Promise<{ status: number; body: Buffer }> {
    const response = await fetch(this.baseUrl + uri, { headers: { 'Accept-Encoding': 'identity' } });
    return { status: response.status, body: Buffer.from(await response.arrayBuffer()) };
  }

  /** /instances/{id}/preview as bytes (a PNG). */
  async preview(instanceId: string): Promise<Buffer> {
    const uri = `/instances/${instanceId}/preview`;
    const response = await fetch(this.baseUrl + uri, { headers: { Accept: 'image/png' } });
    const body = Buffer.from(await response.arrayBuffer());
    if (!response.ok) throw new OrthancHttpError('GET', uri, response.status, body.toString('utf8'));
    return body;
  }

  /** POST a JSON body; answers the JSON Orthanc returns. Throws OrthancHttpError on a non-2xx answer. */
  async postJson<T>(uri: string, body: unknown): Promise<T> {
    const response = await fetch(this.baseUrl + uri, { method: 'POST', body: JSON.stringify(body) });
    const text = await response.text();
    if (!response.ok) throw new OrthancHttpError('POST', uri, response.status, text);
    return JSON.parse(text) as T;
  }

  /** PUT raw bytes (e.g. a user attachment). */
  async putBytes(uri: string, bytes: Uint8Array): Promise<void> {
    const response = await fetch(this.baseUrl + uri, { method: 'PUT', body: bytes });
    const text = await response.text();
    if (!response.ok) throw new OrthancHttpError('PUT', uri, response.status, text);
  }

  async deletePatient(patientId: string): Promise<void> {
    const uri = `/patients/${patientId}`;
    const response = await fetch(this.baseUrl + uri, { method: 'DELETE' });
    const text = await response.text();
    if (!response.ok) throw new OrthancHttpError('DELETE', uri, response.status, text);
  }

  patientInstances(patientId: string): Promise<Array<{ ID: string }>> {
    return this.getJson(`/patients/${patientId}/instances`);
  }
}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
