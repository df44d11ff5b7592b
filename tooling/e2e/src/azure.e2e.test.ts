import { azureBackend } from './backends/azure.js';
import { describeEndToEnd } from './suite.js';

describeEndToEnd('azure', azureBackend());
