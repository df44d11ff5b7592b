// Two Orthancs on one PostgreSQL index and one aws store (see scale-out.ts).
import { awsBackend } from './backends/aws.js';
import { describeScaleOut } from './scale-out.js';

describeScaleOut('aws', awsBackend(), { instances: 500, encrypted: true });
