export {
  AzureBucketClient,
  DEFAULT_AZURE_TUNING,
  openAzureBucketClient,
  type AzureClientOptions,
  type AzureClientTuning,
} from './azure-bucket-client.js';
export {
  openServiceClient,
  redactUrl,
  type AzureAuthKind,
  type OpenedServiceClient,
} from './service-client.js';
