/**
 * AWS IoT service errors as the emulator sends them: a status code, the header
 * `x-amzn-ErrorType: <Name>` and a JSON body `{"message", ...}` from which the AWS SDK builds its
 * typed exception (ResourceNotFoundException, ...). Status codes follow the service model
 * (`@aws-sdk/client-iot`'s error schemas).
 */

/** HTTP status of each AWS IoT error name, from the service model. */
export const ERROR_STATUS: Readonly<Record<string, number>> = {
  CertificateConflictException: 409,
  CertificateStateException: 406,
  CertificateValidationException: 400,
  ConflictException: 409,
  ConflictingResourceUpdateException: 409,
  DeleteConflictException: 409,
  InternalException: 500,
  InternalFailureException: 500,
  InternalServerException: 500,
  InvalidRequestException: 400,
  InvalidStateTransitionException: 409,
  LimitExceededException: 410,
  MalformedPolicyException: 400,
  NotConfiguredException: 404,
  RegistrationCodeValidationException: 400,
  ResourceAlreadyExistsException: 409,
  ResourceNotFoundException: 404,
  ResourceRegistrationFailureException: 400,
  ServiceQuotaExceededException: 402,
  ServiceUnavailableException: 503,
  SqlParseException: 400,
  ThrottlingException: 400,
  UnauthorizedException: 401,
  ValidationException: 400,
  VersionConflictException: 409,
  VersionsLimitExceededException: 409,
};

/** The status for an error name: the model's, else 500 for server-side sounding names, else 400. */
export function statusFor(name: string): number {
  return ERROR_STATUS[name] ?? (/Internal|Unavailable/.test(name) ? 500 : 400);
}

/** An AWS IoT error the emulator answers with. */
export class IotServiceError extends Error {
  readonly status: number;

  constructor(
    readonly errorType: string,
    message: string,
    /** Extra members of the error body, such as `resourceId` and `resourceArn`. */
    readonly extra: Record<string, string> = {},
    status?: number,
  ) {
    super(message);
    this.name = errorType;
    this.status = status ?? statusFor(errorType);
  }

  /** The JSON body AWS IoT sends. */
  body(): Record<string, string> {
    return { message: this.message, ...this.extra };
  }
}

/** ResourceNotFoundException (404). */
export const notFound = (message: string) => new IotServiceError("ResourceNotFoundException", message);

/** ResourceAlreadyExistsException (409) naming the existing resource. */
export const alreadyExists = (message: string, resourceId: string, resourceArn?: string) =>
  new IotServiceError("ResourceAlreadyExistsException", message, {
    resourceId,
    ...(resourceArn ? { resourceArn } : {}),
  });

/** InvalidRequestException (400). */
export const invalidRequest = (message: string) => new IotServiceError("InvalidRequestException", message);

/** CertificateValidationException (400). */
export const certificateInvalid = (message: string) =>
  new IotServiceError("CertificateValidationException", message);

/** CertificateStateException (406). */
export const certificateState = (message: string) =>
  new IotServiceError("CertificateStateException", message);

/** DeleteConflictException (409). */
export const deleteConflict = (message: string) => new IotServiceError("DeleteConflictException", message);
