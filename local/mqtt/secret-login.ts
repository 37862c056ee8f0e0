import { randomUUID } from "node:crypto";
import type { ActivationInfo } from "#core/registration/activate-device.ts";
import type { RegistrationRequest, RegistrationResult } from "#core/registration/register-device.ts";
import { parseMqttConnect, verifyMqttConnect } from "#credentials/mqtt-connect.ts";
import type { AuthorizerResponse } from "#handlers/custom-authorizer.ts";
import type { AuthorizerSession } from "./device-authorizer.ts";
import { parsePolicyDocument } from "./policy-engine.ts";

/**
 * What the local endpoint needs for devices that log in with a secret: the same custom authorizer
 * handler AWS IoT would invoke (called in-process with AWS's event shape), and the dynamic
 * registration and activation use cases for what AWS IoT cannot do itself (pushing a registration
 * or activation answer on a topic the device did not subscribe to).
 */
export type SecretLoginOptions = {
  authorize(event: unknown): Promise<AuthorizerResponse>;
  register(request: RegistrationRequest): Promise<RegistrationResult>;
  activate(request: { productKey: string; deviceKey: string }): Promise<ActivationInfo>;
};

/** A message the endpoint sends to this one connection right after CONNACK. */
export type ServicePush = { topic: string; payload: unknown; thenClose: boolean };

export type SecretLoginDecision =
  | { outcome: "accepted"; session: AuthorizerSession; push?: ServicePush }
  | { outcome: "refused"; reason: string };

/**
 * Decides a username/password CONNECT (no client certificate):
 * - Alibaba `authType=register|regnwl` (seed 002): the registration runs, the connection is
 *   accepted with no permissions, the answer is pushed on `/ext/register` (`{productKey,
 *   deviceName, deviceSecret}`) or `/ext/regnwl` (`{productKey, deviceName, clientId,
 *   deviceToken}`) and the connection closed, as Alibaba's platform does;
 * - anything else goes to the custom authorizer; its policy documents govern the session;
 * - an EnOS SecureMode 3 login (activation only) also gets `thing.activate.info` with its device
 *   secret pushed on `/ext/session/{pk}/{dk}/thing/activate/info` (seed 000).
 */
export async function decideSecretLogin(
  options: SecretLoginOptions,
  connect: { clientId: string; username: string; password: string },
): Promise<SecretLoginDecision> {
  const refused = (reason: string): SecretLoginDecision => ({ outcome: "refused", reason });
  let request: ReturnType<typeof parseMqttConnect>;
  try {
    request = parseMqttConnect(connect, { passwordEncoding: "raw" });
  } catch {
    return refused("malformed-credentials");
  }
  const session = (principalId: string, documents: string[]): AuthorizerSession => ({
    kind: "authorizer",
    clientId: connect.clientId,
    principalId,
    sessionIdentifier: randomUUID(),
    policies: documents.map((d, i) => parsePolicyDocument(`authorizer-${i}`, d)),
  });

  if (request.scheme === "aliyun-register" || request.scheme === "aliyun-regnwl") {
    const authType = request.scheme === "aliyun-register" ? "register" : "regnwl";
    try {
      const result = await options.register({
        productKey: request.productKey,
        deviceName: request.deviceName,
        authType,
        clientId: request.clientId,
        verify: (productSecret) => verifyMqttConnect(request, productSecret),
      });
      const { authType: _authType, ...payload } = result;
      return {
        outcome: "accepted",
        session: session("registration", []),
        push: { topic: `/ext/${authType}`, payload, thenClose: true },
      };
    } catch (error) {
      return refused(`registration-${(error as { code?: string }).code ?? "failed"}`.toLowerCase());
    }
  }

  const answer = await options.authorize({
    protocols: ["tls", "mqtt"],
    protocolData: {
      mqtt: {
        clientId: connect.clientId,
        username: connect.username,
        password: Buffer.from(connect.password).toString("base64"),
      },
    },
    connectionMetadata: { id: randomUUID() },
  });
  if (!answer.isAuthenticated) return refused("custom-authorizer-denied");
  const accepted = session(answer.principalId, answer.policyDocuments);
  if (request.scheme === "enos-sign" && request.secureMode === 3) {
    const info = await options.activate({ productKey: request.productKey, deviceKey: request.deviceKey });
    return {
      outcome: "accepted",
      session: accepted,
      push: {
        topic: `/ext/session/${request.productKey}/${request.deviceKey}/thing/activate/info`,
        payload: info,
        thenClose: false,
      },
    };
  }
  return { outcome: "accepted", session: accepted };
}
