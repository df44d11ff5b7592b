import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { ConfigurationError, type AwsS3Settings, type Logger } from '@orthanc-object-storage/core';
import { sdkLogger } from './sdk-logger.js';

/** `s3://bucket (endpoint …, region …)` for messages: never a key, never userinfo in the URL. */
export function describeBucket(settings: AwsS3Settings): string {
  const where = settings.endpoint === undefined ? '' : `endpoint ${withoutUserinfo(settings.endpoint)}, `;
  return `s3://${settings.bucketName} (${where}region ${settings.region})`;
}

function withoutUserinfo(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    url.username = '';
    url.password = '';
    return url.toString().replace(/\/$/, '');
  } catch {
    return endpoint;
  }
}

/** PEM text of `HttpsCACertificates`; it replaces the default trust store, as in the C++ plugin. */
function readCaBundle(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigurationError(
      `HttpsCACertificates: cannot read the CA bundle "${path}" (${(error as NodeJS.ErrnoException).code ?? 'error'}); expected a readable PEM file`,
    );
  }
}

/** The S3 client's configuration for `AwsS3Storage` settings. */
export function s3ClientConfig(settings: AwsS3Settings, log: Logger): S3ClientConfig {
  const ca = settings.orthanc.httpsCaCertificates;
  const agentOptions = { keepAlive: true, maxSockets: settings.maxConnections };
  const requestHandler = new NodeHttpHandler({
    connectionTimeout: settings.connectionTimeoutSeconds * 1000,
    // The C++ SDK's request timeout is a read timeout: time to the response headers, and idle
    // time while the body flows (a long body that keeps moving is never cut).
    requestTimeout: settings.requestTimeoutSeconds * 1000,
    throwOnRequestTimeout: true,
    socketTimeout: settings.requestTimeoutSeconds * 1000,
    httpAgent: new http.Agent(agentOptions),
    httpsAgent: new https.Agent(ca === undefined ? agentOptions : { ...agentOptions, ca: readCaBundle(ca) }),
  });
  const secrets = [settings.secretKey, settings.accessKey].filter((s): s is string => s !== undefined);
  return {
    region: settings.region,
    ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
    forcePathStyle: !settings.virtualAddressing,
    // Without keys: the SDK's default chain (environment, shared files, web identity, ECS, EC2).
    ...(settings.accessKey !== undefined && settings.secretKey !== undefined
      ? { credentials: { accessKeyId: settings.accessKey, secretAccessKey: settings.secretKey } }
      : {}),
    maxAttempts: settings.maxRetries + 1,
    requestChecksumCalculation: settings.requestChecksumCalculation,
    responseChecksumValidation: settings.requestChecksumCalculation,
    requestHandler,
    ...(settings.enableAwsSdkLogs ? { logger: sdkLogger(log, secrets) } : {}),
  };
}
