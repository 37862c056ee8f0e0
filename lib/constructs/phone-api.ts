import { Duration, RemovalPolicy } from "aws-cdk-lib";
import {
  AuthorizationType,
  CognitoUserPoolsAuthorizer,
  LambdaIntegration,
  type MethodLoggingLevel,
  RequestValidator,
  RestApi,
} from "aws-cdk-lib/aws-apigateway";
import {
  AccountRecovery,
  CfnUserPoolGroup,
  type IUserPool,
  Mfa,
  UserPool,
  type UserPoolClient,
} from "aws-cdk-lib/aws-cognito";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { LogGroup } from "aws-cdk-lib/aws-logs";
import { CfnWebACLAssociation } from "aws-cdk-lib/aws-wafv2";
import { Construct } from "constructs";
import { OPERATOR_GROUP } from "#core/binding/model.ts";
import { BINDING_ROUTES } from "#handlers/binding-api.ts";
import { tableKeyStatements } from "../iam-grants.ts";
import { LAMBDA_SETTINGS } from "../lambda-settings.ts";
import { bindingTableStatement, registryReadStatement } from "./binding-report.ts";
import { RegistryFunction, type RegistryFunctionSettings } from "./onramp-function.ts";
import { addErrorResponses, regionalApiProps } from "./vending-api.ts";

/** Settings of {@link PhoneApi}. */
export type PhoneApiProps = RegistryFunctionSettings & {
  bindingTable: ITable;
  /** The registry's (and binding table's) customer managed key, if any. */
  tableEncryptionKey?: IKey;
  /** An existing user pool (context `phoneUserPoolId`); absent: the stack creates one. */
  existingUserPoolId?: string;
  /** Stage throttling: requests per second and burst. */
  rateLimit: number;
  burstLimit: number;
  /** API Gateway execution logs (the vending API's setting; needs the account's CloudWatch role). */
  executionLogLevel: keyof typeof MethodLoggingLevel;
  /** The web ACL to associate with the stage (the vending API's: one per-IP budget per address); absent: none. */
  webAclArn?: string;
};

/** A bind, a poll or a list is a registry read and a few binding-table calls. */
export const PHONE_API_TIMEOUT = Duration.seconds(10);

/**
 * Device–user binding, the phone side (issue 11): the users (a Cognito user pool the stack creates,
 * with an app client for the phone app and the {@link OPERATOR_GROUP} group, or an existing pool by
 * id), a regional REST API whose every route (`BINDING_ROUTES` of the handler) requires a valid ID token
 * of that pool (API Gateway's Cognito authorizer: missing, forged or expired → 401 before any
 * Lambda runs), one Lambda behind it (`lambdas/entrypoints/binding-api.ts`, reading the claims from
 * `requestContext.authorizer.claims`), stage throttling, JSON access logs without bodies or query
 * strings, and the vending API's per-IP web ACL when given.
 */
export class PhoneApi extends Construct {
  readonly api: RestApi;
  readonly userPool: IUserPool;
  /** The phone app's client (public: no secret, SRP sign-in), when the stack created the pool. */
  readonly userPoolClient?: UserPoolClient;
  readonly handler: RegistryFunction;
  readonly accessLogs: LogGroup;
  /** The stage's web ACL association, when a web ACL is given. */
  readonly webAclAssociation?: CfnWebACLAssociation;

  constructor(scope: Construct, id: string, props: PhoneApiProps) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    if (props.existingUserPoolId) {
      this.userPool = UserPool.fromUserPoolId(this, "Users", props.existingUserPoolId);
    } else {
      const pool = new UserPool(this, "Users", {
        userPoolName: "iot-onramp-phone-users",
        selfSignUpEnabled: true,
        signInAliases: { email: true },
        autoVerify: { email: true },
        accountRecovery: AccountRecovery.EMAIL_ONLY,
        mfa: Mfa.OPTIONAL,
        mfaSecondFactor: { otp: true, sms: false },
        passwordPolicy: {
          minLength: 12,
          requireDigits: true,
          requireLowercase: true,
          requireUppercase: true,
          requireSymbols: true,
          tempPasswordValidity: Duration.days(3),
        },
        deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
        removalPolicy,
      });
      this.userPool = pool;
      this.userPoolClient = pool.addClient("PhoneApp", {
        generateSecret: false,
        authFlows: { userSrp: true },
        preventUserExistenceErrors: true,
        idTokenValidity: Duration.hours(1),
        accessTokenValidity: Duration.hours(1),
        refreshTokenValidity: Duration.days(30),
        enableTokenRevocation: true,
      });
      new CfnUserPoolGroup(this, "Operators", {
        userPoolId: pool.userPoolId,
        groupName: OPERATOR_GROUP,
        description: "iot-onramp operators: may list a device's owners",
      });
    }

    this.handler = new RegistryFunction(this, "Handler", props, {
      entry: "binding-api.ts",
      serviceName: "binding-api",
      description: "iot-onramp: the phone API of device-user binding",
      roleDescription: "iot-onramp binding-api function",
      timeout: PHONE_API_TIMEOUT,
      statements: () => [
        registryReadStatement(props.table),
        bindingTableStatement(props.bindingTable),
        ...tableKeyStatements(props.tableEncryptionKey, "read-write"),
      ],
    });
    this.handler.function.addEnvironment(LAMBDA_SETTINGS.bindingTableName, props.bindingTable.tableName);

    this.accessLogs = new LogGroup(this, "AccessLogs", { retention: props.logRetention, removalPolicy });
    this.api = new RestApi(this, "Api", {
      restApiName: "iot-onramp-phone",
      description: "iot-onramp phone API: bind devices to signed-in users",
      ...regionalApiProps({
        cloudWatchRole: false,
        stageName: "prod",
        rateLimit: props.rateLimit,
        burstLimit: props.burstLimit,
        executionLogLevel: props.executionLogLevel,
        accessLogs: this.accessLogs,
      }),
    });
    const authorizer = new CognitoUserPoolsAuthorizer(this, "Authorizer", {
      cognitoUserPools: [this.userPool],
      identitySource: "method.request.header.Authorization",
      resultsCacheTtl: Duration.minutes(5),
    });
    const validator = new RequestValidator(this, "Validator", {
      restApi: this.api,
      requestValidatorName: "phone-api-parameters",
      // The Lambda checks bodies with zod (one error shape); no models here, so this checks nothing
      // for bodies today and keeps any model added later honest.
      validateRequestBody: true,
      validateRequestParameters: true,
    });
    const integration = new LambdaIntegration(this.handler.function, { proxy: true });
    // The handler's route table (one source for the Lambda, the local API server and this API).
    // Tokens travel in bodies only, never in a path or query string (access logs record paths).
    for (const [operationName, route] of Object.entries(BINDING_ROUTES)) {
      this.api.root.resourceForPath(route.path).addMethod(route.method, integration, {
        operationName,
        authorizer,
        authorizationType: AuthorizationType.COGNITO,
        requestValidator: validator,
      });
    }
    addErrorResponses(this.api);

    if (props.webAclArn) {
      this.webAclAssociation = new CfnWebACLAssociation(this, "WebAcl", {
        resourceArn: this.api.deploymentStage.stageArn,
        webAclArn: props.webAclArn,
      });
    }
  }
}
