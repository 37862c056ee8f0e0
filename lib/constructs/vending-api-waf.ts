import { ArnFormat, Fn, RemovalPolicy, Stack } from "aws-cdk-lib";
import { LogGroup, type RetentionDays } from "aws-cdk-lib/aws-logs";
import { CfnLoggingConfiguration, CfnWebACL } from "aws-cdk-lib/aws-wafv2";
import { Construct } from "constructs";
import { WAF_EVALUATION_WINDOW_SECONDS } from "../config.ts";

/** Settings of {@link VendingApiWaf}. */
export type VendingApiWafProps = {
  /** Requests per source IP per {@link WAF_EVALUATION_WINDOW_SECONDS} before the IP is blocked. */
  rateLimit: number;
  logRetention: RetentionDays;
  /** Of the WAF log group. */
  removalPolicy?: RemovalPolicy;
};

/** Names of the rules and metrics (CloudWatch namespace `AWS/WAFV2`, dimension `Rule`). */
export const WAF_RULES = {
  webAcl: "onramp-vending",
  ratePerIp: "rate-per-source-ip",
  ipReputation: "aws-ip-reputation-list",
} as const;

/** Key of the rate rule's response body (`{"error": {"code": "THROTTLED", …}}`, as the API's 429). */
const THROTTLED_BODY_KEY = "throttled";

/**
 * The vending API's own regional WAFv2 web ACL. The stage throttle (lib/config.ts `apiRateLimit`)
 * is one bucket shared by every caller, so without this one source flooding unsigned or badly
 * signed requests exhausts it and valid devices get 429s. The web ACL counts per source IP first:
 *
 * 1. `rate-per-source-ip`: a rate-based rule aggregated on the client IP (`IP`, the address API
 *    Gateway sees; no forwarded-IP header, which a client could forge), blocking an address over
 *    `rateLimit` requests per 5 minutes with 429 and the API's error body. AWS WAF blocks "near"
 *    the limit and checks it periodically, so a burst can overshoot for up to a minute or so
 *    (https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-type-rate-based-high-level-settings.html).
 * 2. `AWSManagedRulesAmazonIpReputationList` (25 WCU, no subscription fee, billed as one rule):
 *    blocks addresses Amazon threat intelligence lists as bot, reconnaissance or DDoS sources:
 *    the flood this ACL is for.
 *
 * Not added, on purpose: `AWSManagedRulesCommonRuleSet` (its SizeRestrictions_BODY blocks bodies
 * over 8 KB, while a vend request with a CSR may use the Lambda's 16 KiB; SQL injection / XSS
 * patterns mean nothing to a body validated against the VendRequest model and an HMAC),
 * `KnownBadInputs` (Log4j / Java deserialization: no Java here), `AnonymousIpList` (would block
 * devices behind hosting-provider or VPN egress), Bot Control (paid per request; devices are bots).
 *
 * A botnet spread over many addresses stays under a per-IP limit; the stage throttle still caps
 * what reaches the Lambda, and the signature check, nonces and registry decide what gets a
 * certificate.
 *
 * Metrics for the ACL and each rule go to CloudWatch (`AWS/WAFV2`), sampled requests are kept, and
 * the requests WAF blocks or counts (not the allowed ones, which the API's access log already has)
 * are logged to a CloudWatch Logs group named `aws-waf-logs-…` as WAF requires
 * (https://docs.aws.amazon.com/waf/latest/APIReference/API_LoggingConfiguration.html). WAF logs
 * carry headers, never the body; devices send no credentials in headers.
 */
export class VendingApiWaf extends Construct {
  /** The web ACL. */
  readonly webAcl: CfnWebACL;
  /** Blocked and counted requests. */
  readonly logGroup: LogGroup;
  /** The logging configuration of {@link webAcl}. */
  readonly logging: CfnLoggingConfiguration;

  constructor(scope: Construct, id: string, props: VendingApiWafProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const visibility = (metricName: string): CfnWebACL.VisibilityConfigProperty => ({
      cloudWatchMetricsEnabled: true,
      metricName,
      sampledRequestsEnabled: true,
    });

    this.webAcl = new CfnWebACL(this, "WebAcl", {
      scope: "REGIONAL",
      description: "iot-onramp vending API: per-source-IP rate limit and Amazon IP reputation list",
      defaultAction: { allow: {} },
      visibilityConfig: visibility(WAF_RULES.webAcl),
      customResponseBodies: {
        [THROTTLED_BODY_KEY]: {
          contentType: "APPLICATION_JSON",
          content: JSON.stringify({
            error: { code: "THROTTLED", message: "Too many requests from this address; retry later." },
          }),
        },
      },
      rules: [
        {
          name: WAF_RULES.ratePerIp,
          priority: 0,
          statement: {
            rateBasedStatement: {
              aggregateKeyType: "IP",
              limit: props.rateLimit,
              evaluationWindowSec: WAF_EVALUATION_WINDOW_SECONDS,
            },
          },
          action: {
            block: { customResponse: { responseCode: 429, customResponseBodyKey: THROTTLED_BODY_KEY } },
          },
          visibilityConfig: visibility(WAF_RULES.ratePerIp),
        },
        {
          name: WAF_RULES.ipReputation,
          priority: 1,
          statement: {
            managedRuleGroupStatement: { vendorName: "AWS", name: "AWSManagedRulesAmazonIpReputationList" },
          },
          overrideAction: { none: {} },
          visibilityConfig: visibility(WAF_RULES.ipReputation),
        },
      ],
    });

    // The name must start with aws-waf-logs-; the stack id's UUID keeps it unique per stack
    // instance, so a retained group of a deleted stack does not block a new deployment.
    const stackUuid = Fn.select(2, Fn.split("/", stack.stackId));
    this.logGroup = new LogGroup(this, "Logs", {
      logGroupName: `aws-waf-logs-${stack.stackName}-${stackUuid}`,
      retention: props.logRetention,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.logging = new CfnLoggingConfiguration(this, "Logging", {
      resourceArn: this.webAcl.attrArn,
      // The log group's ARN without the ":*" suffix of its Arn attribute, as WAF expects.
      logDestinationConfigs: [
        stack.formatArn({
          service: "logs",
          resource: "log-group",
          resourceName: this.logGroup.logGroupName,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      ],
      loggingFilter: {
        DefaultBehavior: "DROP",
        Filters: [
          {
            Behavior: "KEEP",
            Requirement: "MEETS_ANY",
            Conditions: [{ ActionCondition: { Action: "BLOCK" } }, { ActionCondition: { Action: "COUNT" } }],
          },
        ],
      },
    });
  }
}
