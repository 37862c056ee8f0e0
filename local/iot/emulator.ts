import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type Logger, silentLogger } from "#core/logger.ts";
import { type CaKeyMaterial, CertificateIssuer } from "#core/pki/index.ts";
import type { ArnScope } from "./arns.ts";
import { caCertificateRoutes } from "./ca-certificates.ts";
import { certificateFromRegisteredCa, certificateRoutes, insertCertificate } from "./certificates.ts";
import { dataPlaneRoutes } from "./data-plane.ts";
import { endpointRoutes } from "./endpoint.ts";
import { certificateInvalid } from "./errors.ts";
import { FaultInjector } from "./faults.ts";
import { type CertificateRecord, type CertificateStatus, IotState } from "./iot-state.ts";
import type { EmulatorContext, Route } from "./operation.ts";
import { IotJournal, recoverState } from "./persistence.ts";
import { checkPolicyDocument, newPolicyRecord, policyRoutes } from "./policies.ts";
import { provisioningRoutes } from "./provisioning-templates.ts";
import { type AwsQuotaProfile, OperationQuotas, operationQuotas } from "./quotas.ts";
import { registerThingRoutes } from "./register-thing.ts";
import { registrationTaskRoutes } from "./registration-tasks.ts";
import { loadOrCreateRootCa } from "./root-ca.ts";
import { Router } from "./router.ts";
import { thingGroupRoutes } from "./thing-groups.ts";
import { thingTypeRoutes } from "./thing-types.ts";
import { thingRoutes } from "./things.ts";
import { topicRuleRoutes } from "./topic-rules.ts";

/** Options of createIotEmulator. */
export type IotEmulatorOptions = {
  /**
   * Keep the registry (`iot-state.json` and its journal) and the root CA (`root-ca.pem`,
   * `root-ca.key`) here; in memory when absent. Every write is on disk before it is answered.
   */
  dataDir?: string;
  /** Compact the journal into the snapshot once it is this large (or larger than the snapshot). */
  journalCompactBytes?: number;
  /**
   * The region of ARNs when a request is not signed, and of in-process work (JITR, JITP); a signed
   * request's ARNs name the region it was signed for. Default `us-east-1`.
   */
  region?: string;
  /** The account id in ARNs and `ownedBy`. Default `000000000000`. */
  accountId?: string;
  /** The CA that signs issued certificates; default: `<dataDir>/root-ca.*`, created on first start. */
  rootCa?: CaKeyMaterial;
  /**
   * Where the MQTT endpoint is, `host[:port]`; default `localhost:8883`. DescribeEndpoint answers
   * the host alone when the port is 8883 (as AWS IoT does: the port is implied), else `host:port`.
   */
  dataEndpoint?: string;
  /** Policies created at start when missing (name -> document), e.g. the shared device policy. */
  policies?: Record<string, string>;
  logger?: Logger;
  /**
   * Enforce AWS IoT's default TPS per operation (`default`, see quotas.ts: over the rate a call is
   * answered ThrottlingException) or not (`off`, the default); tests pass OperationQuotas with their
   * own clock.
   */
  quotas?: AwsQuotaProfile | OperationQuotas;
};

/** The AWS IoT control-plane emulator. */
export type IotEmulator = {
  /**
   * A node http request listener serving the AWS IoT REST API and `/_emulator/faults`; pass
   * `body` when the request body was read already (by a signature check in front).
   */
  handler: (req: IncomingMessage, res: ServerResponse, body?: Buffer) => void;
  /** Serves `handler` on its own HTTP server; port 0 picks a free port. */
  listen(port: number, host?: string): Promise<{ url: string; port: number }>;
  /** Stops the server started by listen() and closes the journal. */
  close(): Promise<void>;
  /** Resolves when every change made so far (also through `state`) is on disk. */
  flush(): Promise<void>;
  /** The root CA certificate (PEM) that signs certificates the emulator issues. */
  rootCaPem: string;
  /** The registry, for in-process use (local MQTT endpoint, tests). */
  state: IotState;
  /** Fault injection and per-operation call counts. */
  faults: FaultInjector;
  /** Sets where the MQTT endpoint is (`host[:port]`, once it knows its port); see `dataEndpoint`. */
  setDataEndpoint(hostAndPort: string): void;
  /** Connects the data plane's Publish to the MQTT endpoint (once it is up). */
  setPublisher(publish: (topic: string, payload: unknown) => Promise<void>): void;
  /**
   * Empties the registry as `POST /_emulator/reset` does: every certificate, CA, thing, thing type,
   * thing group, policy, template and topic rule is gone, then the `policies` of the options are
   * created again (the state right after the first start). The registration code stays.
   */
  reset(): Promise<void>;
  /** What operations use; pass it to applyProvisioningPlan (JITP). */
  context: EmulatorContext;
  /**
   * JITR: registers a device certificate presented on connect, signed by a registered CA that is
   * ACTIVE with auto-registration enabled, as PENDING_ACTIVATION (or `status`). Idempotent: a
   * certificate registered before is returned as it is, with `created: false`.
   * @throws IotServiceError CertificateValidationException when no such CA signed it
   */
  registerCertificateFromCa(
    certificatePem: string,
    options?: { status?: CertificateStatus },
  ): Promise<{ certificate: CertificateRecord; created: boolean }>;
};

/** Every route the emulator serves. */
export const IOT_ROUTES: readonly Route[] = [
  ...certificateRoutes,
  ...caCertificateRoutes,
  ...thingRoutes,
  ...policyRoutes,
  ...provisioningRoutes,
  ...registerThingRoutes,
  ...registrationTaskRoutes,
  ...endpointRoutes,
  ...thingTypeRoutes,
  ...thingGroupRoutes,
  ...topicRuleRoutes,
  ...dataPlaneRoutes,
];

/**
 * Starts an AWS IoT control-plane emulator that @aws-sdk/client-iot and the aws CLI
 * (`--endpoint-url`) talk to unchanged. Signatures are not checked here: the local stack's AWS
 * endpoint (`local/aws-endpoint.ts`) checks them in front of it.
 */
export async function createIotEmulator(options: IotEmulatorOptions = {}): Promise<IotEmulator> {
  const scope: ArnScope = {
    region: options.region ?? "us-east-1",
    accountId: options.accountId ?? "000000000000",
  };
  const logger = options.logger ?? silentLogger;
  const dataDir = options.dataDir;

  const rootCa = await loadOrCreateRootCa(dataDir, options.rootCa);
  const issuer = await CertificateIssuer.create(rootCa);
  const recovered = dataDir ? recoverState(dataDir) : undefined;
  const snapshot = recovered?.snapshot ?? IotState.emptySnapshot(randomBytes(32).toString("hex"));
  let journal: IotJournal | undefined;
  const state = new IotState(scope, snapshot, (changes) => journal?.append(changes));
  for (const write of recovered?.writes ?? []) state.applyChanges(write);
  if (dataDir && recovered) {
    journal = await IotJournal.open(dataDir, () => state.snapshot(), recovered.generation, {
      ...(options.journalCompactBytes ? { minCompactBytes: options.journalCompactBytes } : {}),
    });
  }
  const durable = async () => {
    try {
      await journal?.durable();
    } catch (error) {
      logger.error("iot emulator: cannot save the state", { path: dataDir, error: String(error) });
      throw error;
    }
  };

  const context: EmulatorContext = {
    state,
    scope,
    issuer,
    dataEndpoint: options.dataEndpoint ?? "localhost:8883",
    logger,
    now: Date.now,
    durable,
  };
  const seedPolicies = () => {
    for (const [policyName, document] of Object.entries(options.policies ?? {})) {
      if (state.policy(policyName)) continue;
      checkPolicyDocument(document);
      state.insertPolicy(newPolicyRecord(context, policyName, document));
    }
  };
  seedPolicies();
  const reset = async () => {
    state.reset();
    seedPolicies();
    await durable();
    logger.info("iot emulator: registry reset");
  };

  const routes = [...IOT_ROUTES];
  const faults = new FaultInjector(new Set(routes.map((r) => r.operation)));
  const quotas =
    options.quotas instanceof OperationQuotas ? options.quotas : operationQuotas(options.quotas ?? "off");
  const router = new Router(routes, context, faults, reset, quotas);
  let server: Server | undefined;

  return {
    handler: router.listener,
    rootCaPem: issuer.caCertPem,
    state,
    faults,
    context,
    setDataEndpoint(hostAndPort) {
      context.dataEndpoint = hostAndPort;
    },
    setPublisher(publish) {
      context.publish = publish;
    },
    reset,
    async listen(port, host = "127.0.0.1") {
      if (server) throw new Error("The IoT emulator is already listening.");
      const created = createServer(router.listener);
      server = created;
      await new Promise<void>((resolve, reject) => {
        created.once("error", reject);
        created.listen(port, host, () => resolve());
      });
      const address = created.address() as AddressInfo;
      const shownHost = host.includes(":") ? `[${host}]` : host;
      return { url: `http://${shownHost}:${address.port}`, port: address.port };
    },
    async close() {
      const running = server;
      server = undefined;
      if (running) {
        running.closeAllConnections();
        await new Promise<void>((resolve) => running.close(() => resolve()));
      }
      await journal?.close();
    },
    async flush() {
      await durable();
    },
    async registerCertificateFromCa(certificatePem, registerOptions = {}) {
      const status = registerOptions.status ?? "PENDING_ACTIVATION";
      const { record, ca } = await certificateFromRegisteredCa(context, certificatePem, undefined, status);
      if (ca.status !== "ACTIVE" || ca.autoRegistrationStatus !== "ENABLE") {
        throw certificateInvalid(
          `CA certificate ${ca.certificateId} is not ACTIVE with auto-registration enabled.`,
        );
      }
      const known = state.certificate(record.certificateId);
      if (known) {
        await durable(); // it may have been registered a moment ago, not yet on disk
        return { certificate: known, created: false };
      }
      insertCertificate(context, record);
      await durable();
      return { certificate: state.certificate(record.certificateId) ?? record, created: true };
    },
  };
}
