import { randomUUID } from "node:crypto";
import * as z from "zod";
import {
  InvalidCertificateError,
  type ParsedCertificate,
  parseCertificate,
  verifySignedBy,
} from "#core/pki/index.ts";
import { caCertificateArn } from "./arns.ts";
import {
  alreadyExists,
  certificateInvalid,
  certificateState,
  IotServiceError,
  invalidRequest,
  notFound,
} from "./errors.ts";
import type { CaCertificateRecord, RegistrationConfig } from "./iot-state.ts";
import { type EmulatorContext, epochSeconds, type OperationRequest, type Route } from "./operation.ts";
import {
  certificateIdSchema,
  creationKey,
  paginate,
  parseInput,
  queryBoolean,
  queryEnum,
  queryInteger,
  templateNameSchema,
} from "./validation.ts";

const registrationConfigSchema = z.object({
  templateBody: z.string().min(1).max(10240).optional(),
  templateName: templateNameSchema.optional(),
  roleArn: z.string().min(20).max(2048).optional(),
});

const registerCaBody = z.object({
  caCertificate: z.string().min(1).max(65536),
  verificationCertificate: z.string().min(1).max(65536).optional(),
  registrationConfig: registrationConfigSchema.optional(),
  certificateMode: z.enum(["DEFAULT", "SNI_ONLY"]).default("DEFAULT"),
  tags: z.array(z.object({ Key: z.string(), Value: z.string().optional() })).optional(),
});

const updateCaBody = z.object({
  registrationConfig: registrationConfigSchema.optional(),
  removeAutoRegistration: z.boolean().optional(),
});

/**
 * The registered CA that signed a certificate (issuer name and signature checked), or undefined.
 * Used by RegisterCertificate without a CA, RegisterThing with a PEM, and JITR.
 */
export async function findIssuingCa(
  context: EmulatorContext,
  certificatePem: string,
): Promise<CaCertificateRecord | undefined> {
  for (const ca of context.state.listCaCertificates()) {
    if (await verifySignedBy(certificatePem, ca.certificatePem).catch(() => false)) return ca;
  }
  return undefined;
}

/** The `certificateDescription` of DescribeCACertificate. */
function describeCaRecord(record: CaCertificateRecord) {
  return {
    certificateArn: record.certificateArn,
    certificateId: record.certificateId,
    status: record.status,
    certificatePem: record.certificatePem,
    ownedBy: record.ownedBy,
    creationDate: epochSeconds(record.creationDate),
    autoRegistrationStatus: record.autoRegistrationStatus,
    lastModifiedDate: epochSeconds(record.lastModifiedDate),
    customerVersion: record.customerVersion,
    generationId: record.generationId,
    validity: { notBefore: epochSeconds(record.notBefore), notAfter: epochSeconds(record.notAfter) },
    certificateMode: record.certificateMode,
  };
}

async function readCertificate(pem: string, what: string): Promise<ParsedCertificate> {
  try {
    return await parseCertificate(pem);
  } catch (error) {
    if (error instanceof InvalidCertificateError)
      throw certificateInvalid(`The ${what} is not valid: ${error.message}`);
    throw error;
  }
}

function checkRegistrationConfig(context: EmulatorContext, config: RegistrationConfig | undefined): void {
  if (!config) return;
  if (config.templateBody !== undefined && config.templateName !== undefined) {
    throw invalidRequest("registrationConfig takes templateBody or templateName, not both.");
  }
  if (config.templateBody !== undefined) {
    try {
      JSON.parse(config.templateBody);
    } catch {
      throw invalidRequest("registrationConfig.templateBody is not valid JSON.");
    }
  }
  if (config.templateName !== undefined) {
    // RegisterCACertificate and UpdateCACertificate list ResourceNotFoundException
    // (https://docs.aws.amazon.com/iot/latest/apireference/API_RegisterCACertificate.html).
    const template = context.state.provisioningTemplate(config.templateName);
    if (!template) throw notFound(`Provisioning template ${config.templateName} does not exist.`);
    if (template.type !== "JITP")
      throw invalidRequest(`Provisioning template ${config.templateName} is not of type JITP.`);
  }
}

function getRegistrationCode(context: EmulatorContext) {
  return { registrationCode: context.state.registrationCode };
}

async function registerCaCertificate(context: EmulatorContext, request: OperationRequest) {
  const body = parseInput(registerCaBody, request.body ?? {});
  const setAsActive = queryBoolean(request.query, "setAsActive") ?? false;
  const allowAutoRegistration = queryBoolean(request.query, "allowAutoRegistration") ?? false;
  checkRegistrationConfig(context, body.registrationConfig);

  const ca = await readCertificate(body.caCertificate, "CA certificate");
  if (ca.basicConstraints && !ca.basicConstraints.ca) {
    throw certificateInvalid("The certificate is not a CA certificate (basicConstraints CA:FALSE).");
  }
  const now = context.now();
  if (ca.notAfter.getTime() < now) throw certificateInvalid("The CA certificate has expired.");

  if (body.certificateMode === "DEFAULT") {
    if (body.verificationCertificate === undefined) {
      throw invalidRequest("A verificationCertificate is required when certificateMode is DEFAULT.");
    }
    const verification = await readCertificate(body.verificationCertificate, "verification certificate");
    if (verification.subject.commonName !== context.state.registrationCode) {
      throw new IotServiceError(
        "RegistrationCodeValidationException",
        "The verification certificate's common name is not this account's registration code.",
      );
    }
    if (!(await verifySignedBy(verification.pem, ca.pem))) {
      throw certificateInvalid(
        "The verification certificate is not signed by the CA certificate's private key.",
      );
    }
  }

  const record: CaCertificateRecord = {
    certificateId: ca.id,
    certificateArn: caCertificateArn(context.scope, ca.id),
    certificatePem: ca.pem,
    status: setAsActive ? "ACTIVE" : "INACTIVE",
    autoRegistrationStatus: allowAutoRegistration ? "ENABLE" : "DISABLE",
    ...(body.registrationConfig ? { registrationConfig: body.registrationConfig } : {}),
    certificateMode: body.certificateMode,
    ownedBy: context.scope.accountId,
    creationDate: now,
    lastModifiedDate: now,
    customerVersion: 1,
    generationId: randomUUID(),
    notBefore: ca.notBefore.getTime(),
    notAfter: ca.notAfter.getTime(),
  };
  if (!context.state.insertCaCertificate(record)) {
    throw alreadyExists(
      "The CA certificate is already registered.",
      record.certificateId,
      record.certificateArn,
    );
  }
  return { certificateArn: record.certificateArn, certificateId: record.certificateId };
}

function existing(context: EmulatorContext, request: OperationRequest): CaCertificateRecord {
  const id = parseInput(certificateIdSchema, request.labels.certificateId, "certificateId");
  const record = context.state.caCertificate(id);
  if (!record) throw notFound(`CA certificate ${id} does not exist.`);
  return record;
}

function describeCaCertificate(context: EmulatorContext, request: OperationRequest) {
  const record = existing(context, request);
  return {
    certificateDescription: describeCaRecord(record),
    ...(record.registrationConfig ? { registrationConfig: record.registrationConfig } : {}),
  };
}

function updateCaCertificate(context: EmulatorContext, request: OperationRequest) {
  const record = existing(context, request);
  const newStatus = queryEnum(request.query, "newStatus", ["ACTIVE", "INACTIVE"] as const);
  const newAutoRegistrationStatus = queryEnum(request.query, "newAutoRegistrationStatus", [
    "ENABLE",
    "DISABLE",
  ] as const);
  const body = parseInput(updateCaBody, request.body ?? {});
  checkRegistrationConfig(context, body.registrationConfig);
  context.state.updateCaCertificate(
    record.certificateId,
    {
      ...(newStatus ? { status: newStatus } : {}),
      ...(newAutoRegistrationStatus ? { autoRegistrationStatus: newAutoRegistrationStatus } : {}),
      ...(body.registrationConfig ? { registrationConfig: body.registrationConfig } : {}),
      ...(body.removeAutoRegistration ? { removeRegistrationConfig: true } : {}),
    },
    context.now(),
  );
}

function deleteCaCertificate(context: EmulatorContext, request: OperationRequest) {
  const record = existing(context, request);
  if (record.status === "ACTIVE") {
    throw certificateState(
      `CA certificate ${record.certificateId} is ACTIVE; deactivate it before deleting it.`,
    );
  }
  context.state.deleteCaCertificate(record.certificateId);
}

function listCaCertificates(context: EmulatorContext, request: OperationRequest) {
  const pageSize = queryInteger(request.query, "pageSize", 1, 250) ?? 25;
  const ascending = queryBoolean(request.query, "isAscendingOrder") ?? false;
  const templateName = request.query.get("templateName");
  const all = context.state
    .listCaCertificates()
    .filter((ca) => templateName === null || ca.registrationConfig?.templateName === templateName);
  const { page, nextToken } = paginate(
    all,
    request.query.get("marker"),
    pageSize,
    (ca) => creationKey(ca.creationDate, ca.certificateId),
    { descending: !ascending },
  );
  return {
    certificates: page.map((ca) => ({
      certificateArn: ca.certificateArn,
      certificateId: ca.certificateId,
      status: ca.status,
      creationDate: epochSeconds(ca.creationDate),
    })),
    ...(nextToken ? { nextMarker: nextToken } : {}),
  };
}

/** Routes of the CA certificate operations. */
export const caCertificateRoutes: Route[] = [
  {
    operation: "GetRegistrationCode",
    method: "GET",
    path: "/registrationcode",
    handler: getRegistrationCode,
  },
  {
    operation: "RegisterCACertificate",
    method: "POST",
    path: "/cacertificate",
    handler: registerCaCertificate,
  },
  {
    operation: "DescribeCACertificate",
    method: "GET",
    path: "/cacertificate/{certificateId}",
    handler: describeCaCertificate,
  },
  {
    operation: "UpdateCACertificate",
    method: "PUT",
    path: "/cacertificate/{certificateId}",
    handler: updateCaCertificate,
  },
  {
    operation: "DeleteCACertificate",
    method: "DELETE",
    path: "/cacertificate/{certificateId}",
    handler: deleteCaCertificate,
  },
  { operation: "ListCACertificates", method: "GET", path: "/cacertificates", handler: listCaCertificates },
];
