import { readFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { rootCertificates } from 'node:tls';
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import {
  AnonymousCredential,
  BlobServiceClient,
  StorageSharedKeyCredential,
  newPipeline,
  type RequestPolicy,
  type RequestPolicyFactory,
  type StoragePipelineOptions,
  type WebResource,
} from '@azure/storage-blob';
import { ConfigurationError, type AzureBlobSettings } from '@orthanc-object-storage/core';

export type AzureAuthKind = 'shared key' | 'SAS or anonymous' | 'Azure AD (DefaultAzureCredential)';

export interface OpenedServiceClient {
  readonly service: BlobServiceClient;
  readonly accountName: string;
  /** The endpoint without its query (a SAS token lives there). */
  readonly endpoint: string;
  readonly auth: AzureAuthKind;
}

// Retries: 4 tries with exponential backoff (at most ~1, 3, 7 s), so an unreachable account fails a call in seconds.
const PIPELINE_OPTIONS: StoragePipelineOptions = {
  retryOptions: { maxTries: 4, retryDelayInMs: 1000, maxRetryDelayInMs: 8000 },
};

/** Drop the query string (SAS) and any user info from a URL before it appears in a message. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname.replace(/\/$/, '')}`;
  } catch {
    return '(unparsable URL)';
  }
}

/** `HttpsCACertificates`: extra CAs, added to Node's own, for https endpoints. */
async function caAgent(settings: AzureBlobSettings): Promise<Agent | undefined> {
  const path = settings.orthanc.httpsCaCertificates;
  if (path === undefined || path === '') return undefined;
  let bundle: string;
  try {
    bundle = await readFile(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new ConfigurationError(
      `HttpsCACertificates: cannot read CA bundle "${path}" (${reason}); give a readable PEM file`,
    );
  }
  if (!bundle.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ConfigurationError(
      `HttpsCACertificates: "${path}" holds no PEM certificate; give a PEM CA bundle`,
    );
  }
  return new Agent({ keepAlive: true, ca: [...rootCertificates, bundle] });
}

/** A request policy that sends https requests through the agent trusting `HttpsCACertificates`. */
function agentPolicyFactory(agent: Agent): RequestPolicyFactory {
  return {
    create(nextPolicy: RequestPolicy): RequestPolicy {
      return {
        sendRequest(request: WebResource) {
          if (request.url.startsWith('https:')) request.agent = agent;
          return nextPolicy.sendRequest(request);
        },
      };
    },
  };
}

function parseConnectionString(settings: AzureBlobSettings, connectionString: string): BlobServiceClient {
  try {
    return BlobServiceClient.fromConnectionString(connectionString);
  } catch (error) {
    // The SDK's message never quotes the string; ours does not either (it holds the key).
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new ConfigurationError(
      `${settings.section}.ConnectionString: unusable connection string (${reason}); expected ` +
        `"DefaultEndpointsProtocol=https;AccountName=…;AccountKey=…;EndpointSuffix=core.windows.net" ` +
        `or one with "BlobEndpoint=…" (value not shown: it holds a secret)`,
    );
  }
}

function checkAccountUrl(settings: AzureBlobSettings, accountUrl: string): string {
  let parsed: URL;
  try {
    parsed = new URL(accountUrl);
  } catch {
    throw new ConfigurationError(
      `${settings.section}.AccountUrl: "${redactUrl(accountUrl)}" is not a URL; expected e.g. https://<account>.blob.core.windows.net`,
    );
  }
  if (parsed.protocol !== 'https:') {
    throw new ConfigurationError(
      `${settings.section}.AccountUrl: "${redactUrl(accountUrl)}" must use https (Azure AD tokens are only sent over TLS)`,
    );
  }
  if (parsed.search !== '') {
    throw new ConfigurationError(
      `${settings.section}.AccountUrl: must not carry a query (SAS); put a SAS in ConnectionString instead`,
    );
  }
  return accountUrl.replace(/\/+$/, '');
}

/**
 * Build the BlobServiceClient: from `ConnectionString` (key or SAS, as the C++ plugin), or from
 * `AccountUrl` with the `@azure/identity` default chain (environment, workload identity, managed identity …).
 */
export async function openServiceClient(
  settings: AzureBlobSettings,
  overrides: { readonly credential?: TokenCredential } = {},
): Promise<OpenedServiceClient> {
  const agent = await caAgent(settings);
  const pipelineWith = (credential: StorageSharedKeyCredential | AnonymousCredential | TokenCredential) => {
    const pipeline = newPipeline(credential, PIPELINE_OPTIONS);
    if (agent !== undefined) pipeline.factories.push(agentPolicyFactory(agent));
    return pipeline;
  };

  const connectionString = settings.connectionString?.trim();
  if (connectionString !== undefined && connectionString !== '') {
    // Let the SDK parse both forms, then rebuild the client on our own pipeline (CA bundle).
    const parsed = parseConnectionString(settings, connectionString);
    const service = new BlobServiceClient(parsed.url, pipelineWith(parsed.credential));
    const auth: AzureAuthKind =
      parsed.credential instanceof StorageSharedKeyCredential ? 'shared key' : 'SAS or anonymous';
    return { service, accountName: service.accountName, endpoint: redactUrl(parsed.url), auth };
  }

  if (settings.accountUrl !== undefined && settings.accountUrl !== '') {
    const url = checkAccountUrl(settings, settings.accountUrl);
    const credential = overrides.credential ?? new DefaultAzureCredential();
    const service = new BlobServiceClient(url, pipelineWith(credential));
    return {
      service,
      accountName: service.accountName,
      endpoint: redactUrl(url),
      auth: 'Azure AD (DefaultAzureCredential)',
    };
  }

  throw new ConfigurationError(
    `${settings.section}: neither ConnectionString nor AccountUrl is set; give a connection string, ` +
      `or AccountUrl (https://<account>.blob.core.windows.net) to authenticate with Azure AD`,
  );
}
