/**
 * The fake account the local stack plays. Its AWS endpoint accepts only requests signed with the
 * key pair of its data folder (`local/aws-auth/local-aws-credentials.ts`), published in
 * `endpoints.json`, `aws.env` and `LocalStack.credentials`.
 */
export const localRegion = "us-east-1";
export const localAccountId = "000000000000";
