import type { Readable } from 'node:stream';

/** What the shim sends on the gateway's stdin: length-prefixed (u32 LE) JSON. */
export interface GatewayEnvelope {
  readonly socketPath: string;
  readonly section: string;
  readonly provider: string;
  /** Path of Orthanc's configuration file or folder (`OrthancPluginGetConfigurationPath`), or "". */
  readonly configurationPath?: string;
  /** Orthanc's whole configuration, as `OrthancPluginGetConfiguration` returned it. */
  readonly configuration: unknown;
}

const MAX_ENVELOPE_BYTES = 64 * 1024 * 1024;

/**
 * Reads the envelope and keeps stdin flowing afterwards: `onEnd` fires when the shim closes it,
 * which is how the gateway learns that Orthanc has stopped (also after kill -9).
 */
export function readEnvelope(input: Readable, onEnd: () => void): Promise<GatewayEnvelope> {
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    let expected: number | undefined;
    let done = false;
    input.on('data', (chunk: Buffer) => {
      if (done) return;
      buffer = Buffer.concat([buffer, chunk]);
      if (expected === undefined && buffer.length >= 4) {
        expected = buffer.readUInt32LE(0);
        if (expected > MAX_ENVELOPE_BYTES) {
          done = true;
          reject(new Error(`envelope of ${expected} bytes is too large`));
          return;
        }
      }
      if (expected !== undefined && buffer.length >= 4 + expected) {
        done = true;
        const text = buffer.subarray(4, 4 + expected).toString('utf8');
        buffer = Buffer.alloc(0);
        try {
          const parsed = JSON.parse(text) as Partial<GatewayEnvelope>;
          if (typeof parsed.socketPath !== 'string' || typeof parsed.section !== 'string') {
            throw new Error('envelope lacks socketPath or section');
          }
          resolve(parsed as GatewayEnvelope);
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      }
    });
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      if (!done) reject(new Error('stdin closed before the configuration envelope arrived'));
      done = true;
      onEnd();
    };
    input.on('end', end);
    input.on('close', end);
    input.on('error', end);
    input.resume();
  });
}
