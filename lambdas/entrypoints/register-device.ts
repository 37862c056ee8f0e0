import { makeRegisterDeviceHandler } from "#handlers/register-device.ts";
import { lambdaLogger, lambdaServices } from "./lambda-wiring.ts";

const services = lambdaServices();

/** Lambda entry of `POST /auth/register/device` (Alibaba-style dynamic registration over HTTPS). */
export const handler = makeRegisterDeviceHandler({ ...services, logger: lambdaLogger("register-device") });
