/** The fake account the local stack plays: any credentials work, these are just well-formed. */
export const localRegion = "us-east-1";
export const localAccountId = "000000000000";
export const localCredentials = { accessKeyId: "LOCALONRAMP", secretAccessKey: "local-onramp-secret" };
