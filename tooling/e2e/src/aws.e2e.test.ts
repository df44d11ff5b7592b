// The end-to-end suite against S3: Ceph RGW from Debian and the aws plugin artifact.
import { awsBackend } from './backends/radosgw.js';
import { describeEndToEnd } from './suite.js';

describeEndToEnd('aws', awsBackend());
