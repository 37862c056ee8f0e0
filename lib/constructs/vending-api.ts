import { RemovalPolicy } from "aws-cdk-lib";
import {
  AccessLogField,
  AccessLogFormat,
  type DomainName,
  EndpointType,
  LambdaIntegration,
  LogGroupLogDestination,
  MethodLoggingLevel,
  Model,
  RequestValidator,
  ResponseType,
  RestApi,
  type RestApiProps,
  SecurityPolicy,
} from "aws-cdk-lib/aws-apigateway";
import { Certificate } from "aws-cdk-lib/aws-certificatemanager";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { type ILogGroup, LogGroup, type RetentionDays } from "aws-cdk-lib/aws-logs";
import { CfnWebACLAssociation } from "aws-cdk-lib/aws-wafv2";
import { Construct } from "constructs";
import { ALIYUN_REGISTER_PATH, FORM_CONTENT_TYPE } from "#credentials/aliyun-register-form.ts";
import type { VendingApiConfig } from "../config.ts";
import { vendRequestModelSchema } from "../vend-request-model.ts";
import { VendingApiWaf } from "./vending-api-waf.ts";

/** Settings of {@link VendingApi}. */
export type VendingApiProps = VendingApiConfig & {
  /** The vend Lambda (proxy integration). */
  handler: IFunction;
  /** The dynamic registration Lambda behind {@link REGISTER_DEVICE_PATH} (proxy integration). */
  registrationHandler: IFunction;
  logRetention: RetentionDays;
  /** Of the access log group. */
  removalPolicy?: RemovalPolicy;
  /** Stage name (default `prod`). */
  stageName?: string;
};

/** The vend route, as devices call it (below the stage or the custom domain). */
export const VEND_PATH = "/v1/certificates";

/**
 * Alibaba-style dynamic registration over HTTPS, the path Alibaba's device SDKs call
 * (`ALIYUN_REGISTER_PATH` of the credentials module): `POST /auth/register/device`, form-urlencoded.
 */
export const REGISTER_DEVICE_PATH = ALIYUN_REGISTER_PATH;

/** The request parameter the registration route requires (API Gateway checks presence, not value). */
export const REGISTER_DEVICE_REQUIRED_HEADER = "method.request.header.Content-Type";

const JSON_ERROR_HEADERS = {
  "Content-Type": "'application/json'",
  "Cache-Control": "'no-store'",
};

/**
 * The certificate vending API: a regional REST API with two routes, `POST /v1/certificates`
 * proxied to the vend Lambda and `POST /auth/register/device` (Alibaba-style dynamic registration,
 * form-urlencoded, answered in Alibaba's JSON shape) proxied to the registration Lambda.
 *
 * - No API Gateway authorizer: the device proves who it is with the HMAC signature in the body
 *   (timestamp + single-use nonce), which the Lambda verifies against the registry.
 * - The request size limit (16 KiB -> 413 PAYLOAD_TOO_LARGE) is enforced by the Lambda, not here:
 *   API Gateway only caps payloads at 10 MB.
 * - The body is validated against the VendRequest model (derived from the Lambda's zod schema) so
 *   malformed requests never invoke the function; gateway errors use the API's error shape
 *   `{"error": {"code", "message"}}` and never echo request values.
 * - Stage throttling, JSON access logs (no bodies: they carry signatures and keys), optional
 *   execution logs and custom domain.
 * - A WAF web ACL on the stage: by default the stack's own ({@link VendingApiWaf}: per-source-IP
 *   rate limit, so one flooding address cannot use up the stage throttle every device shares), or
 *   an existing one by ARN, or none (`waf=false`).
 */
export class VendingApi extends Construct {
  /** The REST API. */
  readonly api: RestApi;
  /** The access log group. */
  readonly accessLogs: LogGroup;
  /** The custom domain, when configured. */
  readonly domain?: DomainName;
  /** The stack's own web ACL, unless WAF is off or an existing web ACL is associated. */
  readonly waf?: VendingApiWaf;
  /** The stage's web ACL association, unless WAF is off. */
  readonly webAclAssociation?: CfnWebACLAssociation;
  /** The stage's web ACL (the stack's own or an existing one), unless WAF is off. */
  readonly webAclArn?: string;

  constructor(scope: Construct, id: string, props: VendingApiProps) {
    super(scope, id);
    this.accessLogs = new LogGroup(this, "AccessLogs", {
      retention: props.logRetention,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.api = new RestApi(this, "Api", {
      restApiName: "iot-onramp-vending",
      description: "iot-onramp certificate vending API (openapi.yaml)",
      ...regionalApiProps({
        cloudWatchRole: props.createCloudWatchRole,
        stageName: props.stageName ?? "prod",
        rateLimit: props.rateLimit,
        burstLimit: props.burstLimit,
        executionLogLevel: props.executionLogLevel,
        accessLogs: this.accessLogs,
      }),
    });

    const model = new Model(this, "VendRequestModel", {
      restApi: this.api,
      contentType: "application/json",
      modelName: "VendRequest",
      description: "Body of POST /v1/certificates (see openapi.yaml)",
      schema: vendRequestModelSchema(),
    });
    const validator = new RequestValidator(this, "BodyValidator", {
      restApi: this.api,
      requestValidatorName: "vend-request-body",
      validateRequestBody: true,
      // No parameters are declared, so this checks nothing today; it keeps any added later honest.
      validateRequestParameters: true,
    });
    this.api.root
      .resourceForPath(VEND_PATH)
      .addMethod("POST", new LambdaIntegration(props.handler, { proxy: true }), {
        operationName: "vendCertificate",
        requestValidator: validator,
        requestModels: { "application/json": model },
      });
    this.addRegistrationRoute(props.registrationHandler);
    addVendValidationResponses(this.api);
    addErrorResponses(this.api);

    if (props.customDomain) {
      this.domain = this.api.addDomainName("CustomDomain", {
        domainName: props.customDomain.domainName,
        certificate: Certificate.fromCertificateArn(this, "Certificate", props.customDomain.certificateArn),
        endpointType: EndpointType.REGIONAL,
        securityPolicy: SecurityPolicy.TLS_1_2,
      });
    }
    let webAclArn: string | undefined;
    if (props.waf.mode === "create") {
      this.waf = new VendingApiWaf(this, "Waf", {
        rateLimit: props.waf.rateLimit,
        logRetention: props.logRetention,
        ...(props.removalPolicy ? { removalPolicy: props.removalPolicy } : {}),
      });
      webAclArn = this.waf.webAcl.attrArn;
    } else if (props.waf.mode === "existing") {
      webAclArn = props.waf.webAclArn;
    }
    if (webAclArn) {
      this.webAclArn = webAclArn;
      this.webAclAssociation = new CfnWebACLAssociation(this, "WebAcl", {
        resourceArn: this.api.deploymentStage.stageArn,
        webAclArn,
      });
    }
  }

  /**
   * `POST /auth/register/device`. API Gateway validates bodies against JSON-schema models only, so a
   * form body cannot be checked here: the route requires a Content-Type header (a request without
   * one is answered 400 by the gateway, see {@link addErrorResponses}) and the Lambda parses and
   * checks the five fields (400 on a malformed form). Throttled by the stage's limits and covered by
   * the stage's web ACL, like the vend route.
   */
  private addRegistrationRoute(handler: IFunction): void {
    const validator = new RequestValidator(this, "RegistrationValidator", {
      restApi: this.api,
      requestValidatorName: "register-device-content-type",
      validateRequestBody: false,
      validateRequestParameters: true,
    });
    this.api.root
      .resourceForPath(REGISTER_DEVICE_PATH)
      .addMethod("POST", new LambdaIntegration(handler, { proxy: true }), {
        operationName: "registerDevice",
        requestValidator: validator,
        requestParameters: { [REGISTER_DEVICE_REQUIRED_HEADER]: true },
      });
  }
}

/** Settings of {@link regionalApiProps}. */
export type RegionalApiSettings = {
  /** Create (and retain) the account's API Gateway CloudWatch role: one stack per account does. */
  cloudWatchRole: boolean;
  stageName: string;
  /** Stage throttling: requests per second and burst. */
  rateLimit: number;
  burstLimit: number;
  executionLogLevel: keyof typeof MethodLoggingLevel;
  /** Where the stage writes its access log ({@link accessLogFormat}). */
  accessLogs: ILogGroup;
};

/**
 * The endpoint and stage settings both REST APIs (vending and phone) share: a regional endpoint,
 * the account's CloudWatch role only where asked (retained), stage throttling, one access-log line
 * per request, metrics on, execution logs at the configured level. Never data trace: request and
 * response bodies carry signatures, CSRs, private keys and binding tokens.
 */
export function regionalApiProps(
  settings: RegionalApiSettings,
): Pick<RestApiProps, "endpointTypes" | "cloudWatchRole" | "cloudWatchRoleRemovalPolicy" | "deployOptions"> {
  return {
    endpointTypes: [EndpointType.REGIONAL],
    cloudWatchRole: settings.cloudWatchRole,
    ...(settings.cloudWatchRole ? { cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN } : {}),
    deployOptions: {
      stageName: settings.stageName,
      throttlingRateLimit: settings.rateLimit,
      throttlingBurstLimit: settings.burstLimit,
      accessLogDestination: new LogGroupLogDestination(settings.accessLogs),
      accessLogFormat: accessLogFormat(),
      loggingLevel: MethodLoggingLevel[settings.executionLogLevel],
      dataTraceEnabled: false,
      metricsEnabled: true,
    },
  };
}

/** One JSON line per request; nothing from the body, headers or query string. */
function accessLogFormat(): AccessLogFormat {
  return AccessLogFormat.custom(
    JSON.stringify({
      requestId: AccessLogField.contextRequestId(),
      ip: AccessLogField.contextIdentitySourceIp(),
      requestTime: AccessLogField.contextRequestTime(),
      httpMethod: AccessLogField.contextHttpMethod(),
      resourcePath: AccessLogField.contextResourcePath(),
      status: AccessLogField.contextStatus(),
      protocol: AccessLogField.contextProtocol(),
      responseLength: AccessLogField.contextResponseLength(),
      responseLatency: AccessLogField.contextResponseLatency(),
      integrationLatency: AccessLogField.contextIntegrationLatency(),
      integrationStatus: AccessLogField.contextIntegrationStatus(),
      errorType: AccessLogField.contextErrorResponseType(),
      errorMessage: AccessLogField.contextErrorMessage(),
    }),
  );
}

/** The API's error body: `{"error": {"code", "message"}}`. */
const errorBody = (code: string, message: string) => JSON.stringify({ error: { code, message } });

/**
 * Gateway-made errors in the API's error shape (openapi.yaml `Error`): throttling (429 with
 * Retry-After), every other 4xx and 5xx. The vending API adds its two validation answers
 * ({@link addVendValidationResponses}); the phone API has no models or required parameters.
 */
export function addErrorResponses(api: RestApi): void {
  api.addGatewayResponse("Throttled", {
    type: ResponseType.THROTTLED,
    statusCode: "429",
    responseHeaders: { ...JSON_ERROR_HEADERS, "Retry-After": "'1'" },
    templates: { "application/json": errorBody("THROTTLED", "Too many requests; retry later.") },
  });
  api.addGatewayResponse("Default4xx", {
    type: ResponseType.DEFAULT_4XX,
    responseHeaders: JSON_ERROR_HEADERS,
    templates: {
      // $context.error.messageString is already a quoted JSON string.
      "application/json":
        '{"error":{"code":"$context.error.responseType","message":$context.error.messageString}}',
    },
  });
  // API Gateway's own 5xx (502 from a crashed function, 504 when the integration times out) carry
  // Retry-After too, as every 429/503/504 of this API does. Gateway responses are static: no jitter
  // here; the function's own 429/503 (admission control, dependencies) carry the jittered ones.
  api.addGatewayResponse("Default5xx", {
    type: ResponseType.DEFAULT_5XX,
    responseHeaders: { ...JSON_ERROR_HEADERS, "Retry-After": "'2'" },
    templates: { "application/json": errorBody("UNAVAILABLE", "Service unavailable; retry later.") },
  });
}

/** The vending API's own validation answers: a body that is not a VendRequest, a form without Content-Type. */
function addVendValidationResponses(api: RestApi): void {
  api.addGatewayResponse("BadRequestBody", {
    type: ResponseType.BAD_REQUEST_BODY,
    statusCode: "400",
    responseHeaders: JSON_ERROR_HEADERS,
    templates: {
      "application/json": errorBody(
        "INVALID_REQUEST",
        "The request body does not match the VendRequest schema (see openapi.yaml).",
      ),
    },
  });
  // Only the registration route declares a required parameter (its Content-Type header), so this
  // answers its callers, in the shape its Lambda answers (Alibaba's {code, errorCode, message}).
  api.addGatewayResponse("BadRequestParameters", {
    type: ResponseType.BAD_REQUEST_PARAMETERS,
    statusCode: "400",
    responseHeaders: JSON_ERROR_HEADERS,
    templates: {
      "application/json": JSON.stringify({
        code: 400,
        errorCode: "INVALID_REQUEST",
        message: `Send the form with Content-Type ${FORM_CONTENT_TYPE}.`,
      }),
    },
  });
}
