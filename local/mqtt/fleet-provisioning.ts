import { createPrivateKey, randomBytes } from "node:crypto";
import type { Client, PublishPacket } from "aedes";
import type { Logger } from "#core/logger.ts";
import { createKeyPair } from "#core/pki/index.ts";
import { evaluateTemplate, TemplateError } from "#core/provisioning-template/index.ts";
import {
  AWS_ISSUED_NOT_AFTER,
  AWS_ISSUED_SUBJECT,
  certificateFromCsr,
  insertCertificate,
  newCertificateRecord,
} from "#local/iot/certificates.ts";
import { applyProvisioningPlan, type IotEmulator, IotServiceError } from "#local/iot/index.ts";
import type { DeviceSession } from "./device-authorizer.ts";
import { topicMatchesFilter } from "./topic-filter.ts";

/**
 * The fleet provisioning MQTT API of AWS IoT Core on the local endpoint, as documented in
 * "Device provisioning MQTT API" (https://docs.aws.amazon.com/iot/latest/developerguide/fleet-provision-api.html):
 *
 * - `$aws/certificates/create/json` (CreateKeysAndCertificate, empty payload) and
 *   `$aws/certificates/create-from-csr/json` (CreateCertificateFromCsr, `{certificateSigningRequest}`)
 *   answer on `…/accepted` with `certificateId`, `certificatePem`, `certificateOwnershipToken`
 *   (and `privateKey` for the first); the certificate is new and PENDING_ACTIVATION;
 * - `$aws/provisioning-templates/{templateName}/provision/json` (RegisterThing,
 *   `{certificateOwnershipToken, parameters}`) runs the template's pre-provisioning hook (AWS's
 *   5 s limit, https://docs.aws.amazon.com/iot/latest/developerguide/pre-provisioning-hook.html),
 *   merges its `parameterOverrides`, evaluates the template and applies it to the registry, and
 *   answers on `…/accepted` with `{deviceConfiguration, thingName}`;
 * - every failure answers on `…/rejected` with `{statusCode, errorCode, errorMessage}`.
 *
 * Answers go back "through the same MQTT connection used to publish the API request" and only
 * when it subscribed to the answer topic (and may receive it), never to other subscribers; the
 * requests themselves are not delivered to subscribers either (a claim certificate is shared by a
 * whole fleet: its devices must not see each other's keys or tokens).
 *
 * The ownership token is bound to the connection that created the certificate (its session) and
 * expires after an hour, as AWS documents; a certificate still PENDING_ACTIVATION and attached to
 * nothing when its token expires is deleted. Tokens live in memory: a restart forgets them (the
 * device asks for a new certificate, as it would after an expiry).
 *
 * The payload format `cbor` is not implemented: the AWS IoT Device SDK v2 for JavaScript only uses
 * `json` (its iotidentity client builds `…/json` topics); a `cbor` request is logged and dropped.
 *
 * AWS documents the rejected shape but not its error codes. Observed on AWS IoT and used here:
 * 400 `InvalidCertificateOwnershipToken` ("Certificate ownership token cannot be empty.",
 * aws/aws-iot-device-sdk-js-v2#69) and status 403 for a provision request the hook denies
 * (aws-samples/aws-iot-fleet-provisioning#25). The other codes (`InvalidPayload`,
 * `ResourceNotFound`, `InvalidCsr`, `AccessDenied`, `InvalidParameters`, `InternalFailure`) are
 * this emulator's choice in AWS's style.
 */

/** A pre-provisioning hook's handler, called in-process as AWS IoT would invoke the Lambda. */
export type PreProvisioningHookTarget = (event: unknown) => Promise<unknown>;

/** The local name of the pre-provisioning hook function (the seeded template's `targetArn` names it). */
export const LOCAL_PRE_PROVISIONING_HOOK_FUNCTION = "onramp-pre-provisioning-hook";

/** AWS IoT waits this long for the hook. */
export const PRE_PROVISIONING_HOOK_TIMEOUT_MS = 5_000;
/** AWS IoT's certificate ownership tokens expire after one hour. */
export const OWNERSHIP_TOKEN_TTL_MS = 60 * 60_000;

/** Settings of the fleet provisioning API. */
export type FleetProvisioningOptions = {
  /**
   * Hook targets by Lambda function name: a template's `preProvisioningHook.targetArn`
   * (`arn:aws:lambda:{region}:{account}:function:{name}[:qualifier]`, or a bare name) is resolved
   * to the handler of that name. An unknown target fails the request, as a missing Lambda does.
   */
  hooks: ReadonlyMap<string, PreProvisioningHookTarget>;
  /** Default 5 s (AWS's). */
  hookTimeoutMs?: number;
  /** Default 1 hour (AWS's). */
  ownershipTokenTtlMs?: number;
  /** For tests (token expiry). */
  clock?: () => number;
};

type Operation = "create-keys" | "create-from-csr" | "register-thing";
type ApiRequest = { operation: Operation; format: "json" | "cbor"; templateName?: string; base: string };
type Rejection = { statusCode: number; errorCode: string; errorMessage: string };
type Answer = { accepted: Record<string, unknown> } | { rejected: Rejection };

type OwnershipToken = {
  certificateId: string;
  /** The connection that created the certificate. */
  sessionIdentifier: string;
  claimCertificateId: string;
  expiresAt: number;
};

const CREATE_KEYS = /^\$aws\/certificates\/create\/(json|cbor)$/;
const CREATE_FROM_CSR = /^\$aws\/certificates\/create-from-csr\/(json|cbor)$/;
const REGISTER_THING = /^\$aws\/provisioning-templates\/([^/]+)\/provision\/(json|cbor)$/;
const SERVICE_TOPIC =
  /^\$aws\/(certificates\/create(-from-csr)?|provisioning-templates\/[^/]+\/provision)\/(json|cbor)(\/(accepted|rejected))?$/;

const rejection = (statusCode: number, errorCode: string, errorMessage: string): Answer => ({
  rejected: { statusCode, errorCode, errorMessage },
});
const invalidToken = (errorMessage: string) =>
  rejection(400, "InvalidCertificateOwnershipToken", errorMessage);

/** What the endpoint gives the API about the connection that published a request. */
export type FleetRequester = { client: Client; session: DeviceSession };

/**
 * The fleet provisioning API on an aedes broker. The endpoint calls `handle` for every message a
 * client published (after its policy allowed it) and asks `forward` about every delivery of a
 * service topic.
 */
export class FleetProvisioningApi {
  private readonly tokens = new Map<string, OwnershipToken>();
  /** Answers on their way to the one client that asked (payload buffer -> client). */
  private readonly answers = new WeakMap<Buffer, Client>();
  private readonly clock: () => number;
  private readonly tokenTtlMs: number;
  private readonly hookTimeoutMs: number;
  private readonly sweeper: ReturnType<typeof setInterval>;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly iot: IotEmulator,
    private readonly logger: Logger,
    private readonly options: FleetProvisioningOptions,
  ) {
    this.clock = options.clock ?? Date.now;
    this.tokenTtlMs = options.ownershipTokenTtlMs ?? OWNERSHIP_TOKEN_TTL_MS;
    this.hookTimeoutMs = options.hookTimeoutMs ?? PRE_PROVISIONING_HOOK_TIMEOUT_MS;
    this.sweeper = setInterval(() => this.sweepExpiredTokens(), 60_000);
    this.sweeper.unref();
  }

  /** True for the API's request and answer topics (json and cbor). */
  static isServiceTopic(topic: string): boolean {
    return SERVICE_TOPIC.test(topic);
  }

  /**
   * Whether a delivery of a service topic goes ahead: only an answer this API sends to the
   * client it is for. Requests and anything else published on these topics reach no subscriber.
   */
  forward(client: Client | null, packet: PublishPacket): boolean {
    const payload = packet.payload;
    return Buffer.isBuffer(payload) && client !== null && this.answers.get(payload) === client;
  }

  /** Handles a message a client published, if its topic is a request of the API. */
  handle(requester: FleetRequester, topic: string, payload: Buffer | string): void {
    const request = parseRequestTopic(topic);
    if (!request) return;
    const clientId = requester.session.clientId;
    if (request.format === "cbor") {
      this.logger.warn("fleet provisioning: the cbor payload format is not implemented locally; use json", {
        clientId,
        topic,
      });
      return;
    }
    const work = this.answer(requester, request, Buffer.from(payload))
      .then((answer) => this.send(requester.client, request, answer))
      .catch((error: unknown) =>
        this.logger.error("fleet provisioning: request failed", {
          clientId,
          operation: request.operation,
          error: error instanceof Error ? error.name : "unknown",
        }),
      );
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  /** Resolves when every request received so far has been answered. */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Stops the expiry sweeper. */
  close(): void {
    clearInterval(this.sweeper);
  }

  private async answer(requester: FleetRequester, request: ApiRequest, payload: Buffer): Promise<Answer> {
    this.sweepExpiredTokens();
    const body = parsePayload(payload, request.operation === "create-keys");
    if (body === undefined) return rejection(400, "InvalidPayload", "The payload is not a JSON object.");
    try {
      switch (request.operation) {
        case "create-keys":
          return await this.createKeysAndCertificate(requester);
        case "create-from-csr":
          return await this.createCertificateFromCsr(requester, body);
        case "register-thing":
          return await this.registerThing(requester, request.templateName ?? "", body);
      }
    } catch (error) {
      if (error instanceof IotServiceError) {
        const status = error.name === "InvalidRequestException" ? 400 : 500;
        return rejection(status, status === 400 ? "InvalidParameters" : "InternalFailure", error.message);
      }
      throw error;
    }
  }

  private async createKeysAndCertificate(requester: FleetRequester): Promise<Answer> {
    const context = this.iot.context;
    const keys = await createKeyPair("RSA-2048");
    const issued = await context.issuer.issue({
      subjectPublicKey: keys.publicKeyPem,
      subject: AWS_ISSUED_SUBJECT,
      notAfter: AWS_ISSUED_NOT_AFTER,
    });
    const record = newCertificateRecord(
      context,
      {
        id: issued.certificateId,
        pem: issued.certificatePem,
        notBefore: issued.notBefore,
        notAfter: issued.notAfter,
      },
      "PENDING_ACTIVATION",
    );
    insertCertificate(context, record);
    await context.durable();
    // As CreateKeysAndCertificate answers it: PKCS#1 ("RSA PRIVATE KEY").
    const privateKey = createPrivateKey(keys.privateKeyPem)
      .export({ type: "pkcs1", format: "pem" })
      .toString();
    this.logger.info("fleet provisioning: certificate created", {
      clientId: requester.session.clientId,
      claimCertificateId: requester.session.certificateId,
      certificateId: record.certificateId,
      operation: "CreateKeysAndCertificate",
    });
    return {
      accepted: {
        certificateId: record.certificateId,
        certificatePem: record.certificatePem,
        privateKey,
        certificateOwnershipToken: this.issueToken(requester, record.certificateId),
      },
    };
  }

  private async createCertificateFromCsr(requester: FleetRequester, body: Record<string, unknown>) {
    const csr = body.certificateSigningRequest;
    if (typeof csr !== "string" || csr.length === 0 || csr.length > 4096) {
      return rejection(
        400,
        "InvalidPayload",
        "certificateSigningRequest must be a PEM CSR (at most 4096 characters).",
      );
    }
    const context = this.iot.context;
    let record: Awaited<ReturnType<typeof certificateFromCsr>>;
    try {
      record = await certificateFromCsr(context, csr, "PENDING_ACTIVATION");
    } catch (error) {
      if (error instanceof IotServiceError) return rejection(400, "InvalidCsr", error.message);
      throw error;
    }
    insertCertificate(context, record);
    await context.durable();
    this.logger.info("fleet provisioning: certificate created", {
      clientId: requester.session.clientId,
      claimCertificateId: requester.session.certificateId,
      certificateId: record.certificateId,
      operation: "CreateCertificateFromCsr",
    });
    return {
      accepted: {
        certificateOwnershipToken: this.issueToken(requester, record.certificateId),
        certificateId: record.certificateId,
        certificatePem: record.certificatePem,
      },
    };
  }

  private async registerThing(
    requester: FleetRequester,
    templateName: string,
    body: Record<string, unknown>,
  ): Promise<Answer> {
    const { session } = requester;
    const tokenText = body.certificateOwnershipToken;
    const parameters = body.parameters ?? {};
    if (!isStringRecord(parameters)) {
      return rejection(400, "InvalidPayload", "parameters must be an object of string values.");
    }
    if (tokenText !== undefined && typeof tokenText !== "string") {
      return rejection(400, "InvalidPayload", "certificateOwnershipToken must be a string.");
    }
    const template = this.iot.state.provisioningTemplate(templateName);
    if (template?.type !== "FLEET_PROVISIONING") {
      return rejection(404, "ResourceNotFound", `The provisioning template ${templateName} does not exist.`);
    }
    if (!template.enabled) {
      return rejection(400, "InvalidParameters", `The provisioning template ${templateName} is disabled.`);
    }
    if (!tokenText) return invalidToken("Certificate ownership token cannot be empty.");
    const token = this.tokens.get(tokenText);
    // A token of another connection is as unknown as a forged one: nothing tells them apart.
    if (!token || token.sessionIdentifier !== session.sessionIdentifier) {
      this.logDenied(requester, templateName, "ownership-token-invalid");
      return invalidToken("Certificate ownership token is invalid.");
    }
    if (token.expiresAt <= this.clock()) {
      this.logDenied(requester, templateName, "ownership-token-expired");
      return invalidToken("Certificate ownership token has expired.");
    }
    const certificate = this.iot.state.certificate(token.certificateId);
    if (!certificate) return invalidToken("The certificate of this ownership token no longer exists.");

    let merged: Record<string, string> = { ...parameters };
    if (template.preProvisioningHook) {
      const decision = await this.runHook(template.preProvisioningHook.targetArn, {
        claimCertificateId: session.certificateId,
        certificateId: certificate.certificateId,
        certificatePem: certificate.certificatePem,
        templateArn: template.templateArn,
        clientId: session.clientId,
        parameters,
      });
      if (!decision.allowed) {
        this.logDenied(requester, templateName, decision.reason, certificate.certificateId);
        return rejection(403, "AccessDenied", decision.message);
      }
      merged = { ...merged, ...decision.parameterOverrides };
    }

    let plan: ReturnType<typeof evaluateTemplate>;
    try {
      plan = evaluateTemplate(template.templateBody, merged, {
        certificate: { id: certificate.certificateId },
      });
    } catch (error) {
      if (error instanceof TemplateError) return rejection(400, "InvalidParameters", error.message);
      throw error;
    }
    const result = await applyProvisioningPlan(this.iot.context, plan);
    this.logger.info("fleet provisioning: thing provisioned", {
      clientId: session.clientId,
      claimCertificateId: session.certificateId,
      certificateId: certificate.certificateId,
      templateName,
      ...(result.thingName ? { thingName: result.thingName } : {}),
    });
    return {
      accepted: {
        deviceConfiguration: plan.deviceConfiguration ?? {},
        ...(result.thingName ? { thingName: result.thingName } : {}),
      },
    };
  }

  /** Invokes the hook target with AWS's time limit; anything but an explicit allow denies. */
  private async runHook(
    targetArn: string,
    event: Record<string, unknown>,
  ): Promise<
    | { allowed: true; parameterOverrides: Record<string, string> }
    | { allowed: false; reason: string; message: string }
  > {
    const name = lambdaFunctionName(targetArn);
    const target = name === undefined ? undefined : this.options.hooks.get(name);
    if (!target) {
      return {
        allowed: false,
        reason: "hook-target-unknown",
        message: `The pre-provisioning hook ${targetArn} could not be invoked.`,
      };
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), this.hookTimeoutMs);
    });
    let output: unknown;
    try {
      output = await Promise.race([target(event), timeout]);
    } catch {
      return { allowed: false, reason: "hook-failed", message: "The pre-provisioning hook failed." };
    } finally {
      clearTimeout(timer);
    }
    if (output === "timeout") {
      return {
        allowed: false,
        reason: "hook-timeout",
        message: "The pre-provisioning hook did not answer in time.",
      };
    }
    const answer = (typeof output === "object" && output !== null ? output : {}) as Record<string, unknown>;
    if (answer.allowProvisioning !== true) {
      return {
        allowed: false,
        reason: "hook-denied",
        message: "The pre-provisioning hook did not allow provisioning.",
      };
    }
    const overrides = answer.parameterOverrides ?? {};
    if (!isStringRecord(overrides)) {
      return {
        allowed: false,
        reason: "hook-malformed",
        message: "The pre-provisioning hook's answer is malformed.",
      };
    }
    return { allowed: true, parameterOverrides: overrides };
  }

  private issueToken(requester: FleetRequester, certificateId: string): string {
    // Opaque and unguessable, like AWS's; what it stands for stays here.
    const token = randomBytes(48).toString("base64url");
    this.tokens.set(token, {
      certificateId,
      sessionIdentifier: requester.session.sessionIdentifier,
      claimCertificateId: requester.session.certificateId,
      expiresAt: this.clock() + this.tokenTtlMs,
    });
    return token;
  }

  /**
   * Forgets expired tokens; deletes their certificate if it is still PENDING_ACTIVATION and
   * attached to no thing and no policy (AWS: "the certificate is deleted").
   */
  private sweepExpiredTokens(): void {
    const now = this.clock();
    const { state } = this.iot;
    for (const [text, token] of this.tokens) {
      if (token.expiresAt > now) continue;
      this.tokens.delete(text);
      const certificate = state.certificate(token.certificateId);
      if (
        certificate?.status === "PENDING_ACTIVATION" &&
        state.principalThings(certificate.certificateArn).length === 0 &&
        state.attachedPolicies(certificate.certificateArn).length === 0
      ) {
        state.deleteCertificate(certificate.certificateId);
        this.logger.info("fleet provisioning: unused certificate deleted after its ownership token expired", {
          certificateId: certificate.certificateId,
          claimCertificateId: token.claimCertificateId,
        });
      }
    }
  }

  /** Sends the answer to the client that asked, if it subscribed to the answer's topic. */
  private send(client: Client, request: ApiRequest, answer: Answer): void {
    const accepted = "accepted" in answer;
    const topic = `${request.base}/${accepted ? "accepted" : "rejected"}`;
    if (!accepted) {
      this.logger.info("fleet provisioning: rejected", {
        clientId: client.id,
        operation: request.operation,
        statusCode: answer.rejected.statusCode,
        errorCode: answer.rejected.errorCode,
      });
    }
    if (client.closed) return;
    const filters = Object.keys(
      (client as Client & { subscriptions?: Record<string, unknown> }).subscriptions ?? {},
    );
    if (!filters.some((filter) => topicMatchesFilter(filter, topic))) {
      this.logger.warn("fleet provisioning: answer not delivered, the client is not subscribed to it", {
        clientId: client.id,
        topic,
      });
      return;
    }
    const payload = Buffer.from(JSON.stringify(accepted ? answer.accepted : answer.rejected));
    this.answers.set(payload, client);
    client.publish({ cmd: "publish", topic, payload, qos: 1, retain: false, dup: false }, () => undefined);
  }

  private logDenied(requester: FleetRequester, templateName: string, reason: string, certificateId?: string) {
    this.logger.warn("fleet provisioning: provision request refused", {
      clientId: requester.session.clientId,
      claimCertificateId: requester.session.certificateId,
      ...(certificateId ? { certificateId } : {}),
      templateName,
      reason,
    });
  }
}

function parseRequestTopic(topic: string): ApiRequest | undefined {
  let match = CREATE_KEYS.exec(topic);
  if (match) return { operation: "create-keys", format: match[1] as "json", base: topic };
  match = CREATE_FROM_CSR.exec(topic);
  if (match) return { operation: "create-from-csr", format: match[1] as "json", base: topic };
  match = REGISTER_THING.exec(topic);
  if (match) {
    return {
      operation: "register-thing",
      format: match[2] as "json",
      templateName: match[1] as string,
      base: topic,
    };
  }
  return undefined;
}

/** The request's JSON object; an empty payload counts as `{}` where AWS documents one. */
function parsePayload(payload: Buffer, emptyAllowed: boolean): Record<string, unknown> | undefined {
  if (payload.length === 0) return emptyAllowed ? {} : undefined;
  try {
    const value: unknown = JSON.parse(payload.toString("utf8"));
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return (
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === "string")
  );
}

/** `arn:aws:lambda:{region}:{account}:function:{name}[:qualifier]` or a bare name -> the name. */
export function lambdaFunctionName(target: string): string | undefined {
  const arn = /^arn:aws[a-z-]*:lambda:[^:]*:[^:]*:function:([^:]+)(:[^:]+)?$/.exec(target);
  if (arn) return arn[1];
  return /^[A-Za-z0-9_-]{1,64}$/.test(target) ? target : undefined;
}
