import type { IncomingHttpHeaders } from "node:http";
import type { Logger } from "#core/logger.ts";
import type { CertificateIssuer } from "#core/pki/index.ts";
import type { ArnScope } from "./arns.ts";
import type { IotState } from "./iot-state.ts";

/** What every operation handler can use. */
export type EmulatorContext = {
  state: IotState;
  scope: ArnScope;
  /** Signs certificates from CreateCertificateFromCsr, CreateKeysAndCertificate and RegisterThing CSRs. */
  issuer: CertificateIssuer;
  /** DescribeEndpoint's answer for data endpoints. */
  dataEndpoint: string;
  logger: Logger;
  now: () => number;
  /**
   * Resolves when every change made so far is on disk (immediately in memory). The router awaits
   * it before answering, so an acknowledged write survives a crash.
   */
  durable: () => Promise<void>;
  /**
   * The data plane's Publish (`POST /topics/{topic}`): hands a message to the local MQTT endpoint.
   * Unset until the endpoint is up (then Publish answers ServiceUnavailableException).
   */
  publish?: (topic: string, payload: unknown) => Promise<void>;
};

/** One request, as the router decoded it. */
export type OperationRequest = {
  /** Path labels, URL-decoded, e.g. `{certificateId}`. */
  labels: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body; undefined when the body is empty. */
  body: unknown;
};

/** Handles one operation; returns the JSON response body (undefined for `{}`). */
export type OperationHandler = (context: EmulatorContext, request: OperationRequest) => unknown;

/** A REST route of the AWS IoT API, as @aws-sdk/client-iot's `http` traits define it. */
export type Route = {
  operation: string;
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** A path pattern with `{label}` segments, e.g. `/certificates/{certificateId}`. */
  path: string;
  handler: OperationHandler;
};

/** AWS IoT REST-JSON timestamps are epoch seconds. */
export const epochSeconds = (ms: number) => ms / 1000;
