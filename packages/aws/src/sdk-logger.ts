import type { S3ClientConfig } from '@aws-sdk/client-s3';
import type { Logger } from '@orthanc-object-storage/core';

type SdkLogger = NonNullable<S3ClientConfig['logger']>;

const SIGNED_VALUE =
  /(authorization|signature|credential|security-token|secret[a-z-]*)(["']?\s*[=:]\s*["']?)[^\s&,"']+/gi;

/** One line per SDK event, without bodies, headers or anything that could carry a secret. */
function describe(item: unknown, secrets: readonly string[]): string {
  let text: string;
  if (item !== null && typeof item === 'object' && 'commandName' in item) {
    const event = item as {
      clientName?: string;
      commandName?: string;
      metadata?: { httpStatusCode?: number; requestId?: string; attempts?: number };
      error?: { name?: string };
    };
    const meta = event.metadata ?? {};
    const parts = [
      `${event.commandName ?? '?'}`,
      meta.httpStatusCode === undefined ? undefined : `HTTP ${meta.httpStatusCode}`,
      meta.attempts === undefined ? undefined : `attempts ${meta.attempts}`,
      meta.requestId === undefined ? undefined : `request id ${meta.requestId}`,
      event.error?.name === undefined ? undefined : `error ${event.error.name}`,
    ];
    text = parts.filter((p) => p !== undefined).join(', ');
  } else if (item instanceof Error) {
    text = `${item.name}: ${item.message}`;
  } else {
    text = typeof item === 'string' ? item : (JSON.stringify(item) ?? String(item));
  }
  text = text.replace(SIGNED_VALUE, '$1$2<redacted>');
  for (const secret of secrets) text = text.split(secret).join('<redacted>');
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}

/** `EnableAwsSdkLogs`: the SDK's log into ours. */
export function sdkLogger(log: Logger, secrets: readonly string[]): SdkLogger {
  const line = (items: unknown[]) => `AWS SDK: ${items.map((item) => describe(item, secrets)).join(' ')}`;
  return {
    trace: (...items) => log.info(line(items)),
    debug: (...items) => log.info(line(items)),
    info: (...items) => log.info(line(items)),
    warn: (...items) => log.warn(line(items)),
    error: (...items) => log.error(line(items)),
  };
}
