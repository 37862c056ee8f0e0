/**
 * What Lambda bundles use in place of `@aws-sdk/credential-provider-node` (lib/bundling.ts aliases
 * it here). In Lambda the execution role's credentials are always in the environment
 * (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), so the default chain's SSO, STS,
 * web-identity, process and IMDS providers are dead weight: ~95 KB of every bundle.
 */
export { fromEnv as defaultProvider } from "@aws-sdk/credential-provider-env";
