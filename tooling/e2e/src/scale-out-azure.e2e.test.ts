// Two Orthancs on one PostgreSQL index and one azure store (see scale-out.ts).
import { azureBackend } from './backends/azure.js';
import { describeScaleOut } from './scale-out.js';

describeScaleOut('azure', azureBackend(), { instances: 60, encrypted: false });
