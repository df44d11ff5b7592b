// The end-to-end suite against the aws plugin (backends/aws.ts), from its release tarball.
import { awsBackend } from './backends/aws.js';
import { describeEndToEnd } from './suite.js';

describeEndToEnd('aws', awsBackend());
