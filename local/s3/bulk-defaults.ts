import { localAccountId } from "../local-aws.ts";

/**
 * The local stack's bulk provisioning resources, the counterparts of the CDK stack's
 * (`lib/constructs/bulk-provisioning.ts`, outputs BulkProvisioningBucketName and
 * BulkRegistrationRoleArn): the bucket `npm start` creates in the local S3, and the role ARN
 * StartThingRegistrationTask is given (the emulator has no IAM: any ARN of the right length
 * passes, as the task's own S3 access is in-process).
 */
export const LOCAL_BULK_BUCKET = "onramp-bulk-provisioning";
export const LOCAL_BULK_ROLE_ARN = `arn:aws:iam::${localAccountId}:role/onramp-bulk-registration`;
