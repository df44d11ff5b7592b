// The end-to-end suite against the azure plugin (backends/azure.ts), from its release tarball.
import { azureBackend } from './backends/azure.js';
import { describeEndToEnd } from './suite.js';

describeEndToEnd('azure', azureBackend());
