import { awsBackend } from './backends/aws.js';
import { describeEndToEnd } from './suite.js';

describeEndToEnd('aws', awsBackend());
