import { AMAZON_ROOT_CA_1 } from "#adapters/amazon-root-ca.ts";
import { defaultVendConfig } from "#core/vending/vend-certificate.ts";
import { makeVendCertificateHandler } from "#handlers/vend-certificate.ts";
import { lambdaLogger, lambdaServices } from "./lambda-wiring.ts";

/** Lambda entry of POST /v1/certificates (API Gateway REST, proxy integration). */
export const handler = makeVendCertificateHandler({
  ...lambdaServices(),
  config: { ...defaultVendConfig, serverRootCaPem: AMAZON_ROOT_CA_1 },
  logger: lambdaLogger("vend-certificate"),
});
