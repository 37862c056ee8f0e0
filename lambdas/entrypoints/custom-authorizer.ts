import { makeCustomAuthorizerHandler } from "#handlers/custom-authorizer.ts";
import { AUTHORIZER_POLICY_DOCUMENTS, loadPolicyDocument } from "#templates/catalog.ts";
import { lambdaLogger, lambdaServices } from "./lambda-wiring.ts";

/**
 * Lambda entry of the AWS IoT custom authorizer (MQTT username/password) for secret-born devices.
 * Two attempts per call at most: AWS IoT gives the authorizer 5 s.
 */
const services = lambdaServices({ maxAttempts: 2 });

export const handler = makeCustomAuthorizerHandler({
  ...services,
  policies: {
    device: loadPolicyDocument(AUTHORIZER_POLICY_DOCUMENTS.device),
    activation: loadPolicyDocument(AUTHORIZER_POLICY_DOCUMENTS.activation),
  },
  logger: lambdaLogger("custom-authorizer"),
});
