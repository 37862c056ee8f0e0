import { createPrivateKey, randomUUID } from "node:crypto";
import * as z from "zod";
import {
  AWS_IOT_KEY_POLICY,
  createKeyPair,
  InvalidCertificateError,
  InvalidCsrError,
  type ParsedCertificate,
  parseCertificate,
  parseCsr,
  verifySignedBy,
} from "#core/pki/index.ts";
import { certificateArn } from "./arns.ts";
import { findIssuingCa } from "./ca-certificates.ts";
import {
  alreadyExists,
  certificateInvalid,
  certificateState,
  deleteConflict,
  invalidRequest,
  notFound,
} from "./errors.ts";
import type { CaCertificateRecord, CertificateRecord, CertificateStatus } from "./iot-state.ts";
import { type EmulatorContext, epochSeconds, type OperationRequest, type Route } from "./operation.ts";
import {
  certificateIdSchema,
  creationKey,
  paginate,
  parseInput,
  queryBoolean,
  queryInteger,
} from "./validation.ts";

/** The subject AWS IoT gives certificates it issues (the CSR's subject is not copied). */
export const AWS_ISSUED_SUBJECT = "CN=AWS IoT Certificate";
/** AWS IoT-issued certificates are valid until the end of 2049. */
export const AWS_ISSUED_NOT_AFTER = new Date("2049-12-31T23:59:59Z");

const STATUSES = [
  "ACTIVE",
  "INACTIVE",
  "REVOKED",
  "PENDING_TRANSFER",
  "REGISTER_INACTIVE",
  "PENDING_ACTIVATION",
] as const;

const pemSchema = (max: number) => z.string().min(1).max(max);
const statusSchema = z.enum(STATUSES);
const createFromCsrBody = z.object({ certificateSigningRequest: pemSchema(4096) });
const registerBody = z.object({
  certificatePem: pemSchema(65536),
  caCertificatePem: pemSchema(65536).optional(),
  status: z.string().optional(),
});
const registerWithoutCaBody = z.object({ certificatePem: pemSchema(65536), status: z.string().optional() });

/** The `certificateDescription` of DescribeCertificate. */
export function describeCertificateRecord(record: CertificateRecord) {
  return {
    certificateArn: record.certificateArn,
    certificateId: record.certificateId,
    ...(record.caCertificateId ? { caCertificateId: record.caCertificateId } : {}),
    status: record.status,
    certificatePem: record.certificatePem,
    ownedBy: record.ownedBy,
    creationDate: epochSeconds(record.creationDate),
    lastModifiedDate: epochSeconds(record.lastModifiedDate),
    customerVersion: record.customerVersion,
    generationId: record.generationId,
    validity: { notBefore: epochSeconds(record.notBefore), notAfter: epochSeconds(record.notAfter) },
    certificateMode: record.certificateMode,
  };
}

/** A new certificate record (not stored yet). */
export function newCertificateRecord(
  context: EmulatorContext,
  certificate: Pick<ParsedCertificate, "id" | "pem" | "notBefore" | "notAfter">,
  status: CertificateStatus,
  ca?: Pick<CaCertificateRecord, "certificateId" | "certificateMode">,
): CertificateRecord {
  const now = context.now();
  return {
    certificateId: certificate.id,
    certificateArn: certificateArn(context.scope, certificate.id),
    certificatePem: certificate.pem,
    status,
    ...(ca ? { caCertificateId: ca.certificateId } : {}),
    certificateMode: ca?.certificateMode ?? "DEFAULT",
    ownedBy: context.scope.accountId,
    creationDate: now,
    lastModifiedDate: now,
    customerVersion: 1,
    generationId: randomUUID(),
    notBefore: certificate.notBefore.getTime(),
    notAfter: certificate.notAfter.getTime(),
  };
}

/** Stores a new record; ResourceAlreadyExistsException if the certificate is already registered. */
export function insertCertificate(context: EmulatorContext, record: CertificateRecord): void {
  if (!context.state.insertCertificate(record)) {
    throw alreadyExists(
      "The certificate is already registered.",
      record.certificateId,
      record.certificateArn,
    );
  }
}

/**
 * Issues a certificate for a CSR with the emulator's root CA, as CreateCertificateFromCsr does:
 * the CSR's signature is verified, keys follow AWS IoT's rules (RSA >= 2048, EC P-256/384/521).
 * The record is returned, not stored. InvalidRequestException for a bad CSR.
 */
export async function certificateFromCsr(
  context: EmulatorContext,
  csrPem: string,
  status: CertificateStatus,
): Promise<CertificateRecord> {
  let csr: Awaited<ReturnType<typeof parseCsr>>;
  try {
    csr = await parseCsr(csrPem, { keyPolicy: AWS_IOT_KEY_POLICY });
  } catch (error) {
    if (error instanceof InvalidCsrError)
      throw invalidRequest(`Invalid certificate signing request: ${error.message}`);
    throw error;
  }
  const issued = await context.issuer.issue({
    subjectPublicKey: csr.publicKeySpkiDer,
    subject: AWS_ISSUED_SUBJECT,
    notAfter: AWS_ISSUED_NOT_AFTER,
  });
  return newCertificateRecord(
    context,
    {
      id: issued.certificateId,
      pem: issued.certificatePem,
      notBefore: issued.notBefore,
      notAfter: issued.notAfter,
    },
    status,
  );
}

/** Parses a device certificate PEM and checks its validity period: CertificateValidationException otherwise. */
export async function readDeviceCertificate(
  context: EmulatorContext,
  pem: string,
): Promise<ParsedCertificate> {
  let certificate: ParsedCertificate;
  try {
    certificate = await parseCertificate(pem);
  } catch (error) {
    if (error instanceof InvalidCertificateError)
      throw certificateInvalid(`The certificate is not valid: ${error.message}`);
    throw error;
  }
  const now = context.now();
  if (certificate.notAfter.getTime() < now) throw certificateInvalid("The certificate has expired.");
  if (certificate.notBefore.getTime() > now) throw certificateInvalid("The certificate is not valid yet.");
  return certificate;
}

/**
 * Registers a device certificate signed by a registered CA (RegisterCertificate, JITR).
 * With `caCertificatePem` that CA must be registered and have signed it; without, the issuing CA
 * is looked up among the registered ones. The record is returned, not stored.
 */
export async function certificateFromRegisteredCa(
  context: EmulatorContext,
  certificatePem: string,
  caCertificatePem: string | undefined,
  status: CertificateStatus,
): Promise<{ record: CertificateRecord; ca: CaCertificateRecord }> {
  const certificate = await readDeviceCertificate(context, certificatePem);
  let ca: CaCertificateRecord | undefined;
  if (caCertificatePem !== undefined) {
    let caId: string;
    try {
      caId = (await parseCertificate(caCertificatePem)).id;
    } catch {
      throw certificateInvalid("The CA certificate is not valid X.509.");
    }
    ca = context.state.caCertificate(caId);
    if (!ca) throw certificateInvalid("The CA certificate is not registered.");
    if (!(await verifySignedBy(certificate.pem, ca.certificatePem))) {
      throw certificateInvalid("The certificate is not signed by the given CA certificate.");
    }
  } else {
    ca = await findIssuingCa(context, certificate.pem);
    if (!ca) throw certificateInvalid("The certificate is not signed by a registered CA certificate.");
  }
  if (status === "ACTIVE" && ca.status !== "ACTIVE") {
    throw certificateState(`The CA certificate ${ca.certificateId} is not ACTIVE.`);
  }
  return { record: newCertificateRecord(context, certificate, status, ca), ca };
}

function existing(context: EmulatorContext, request: OperationRequest): CertificateRecord {
  const id = parseInput(certificateIdSchema, request.labels.certificateId, "certificateId");
  const record = context.state.certificate(id);
  if (!record) throw notFound(`Certificate ${id} does not exist.`);
  return record;
}

function initialStatus(request: OperationRequest, status: string | undefined): CertificateStatus {
  if (status !== undefined) {
    const parsed = parseInput(statusSchema, status, "status");
    if (parsed === "PENDING_TRANSFER")
      throw invalidRequest("A certificate cannot be registered as PENDING_TRANSFER.");
    return parsed;
  }
  return queryBoolean(request.query, "setAsActive") ? "ACTIVE" : "INACTIVE";
}

async function createCertificateFromCsr(context: EmulatorContext, request: OperationRequest) {
  const body = parseInput(createFromCsrBody, request.body ?? {});
  const status = queryBoolean(request.query, "setAsActive") ? "ACTIVE" : "INACTIVE";
  const record = await certificateFromCsr(context, body.certificateSigningRequest, status);
  insertCertificate(context, record);
  return {
    certificateArn: record.certificateArn,
    certificateId: record.certificateId,
    certificatePem: record.certificatePem,
  };
}

async function createKeysAndCertificate(context: EmulatorContext, request: OperationRequest) {
  const status = queryBoolean(request.query, "setAsActive") ? "ACTIVE" : "INACTIVE";
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
    status,
  );
  insertCertificate(context, record);
  // AWS IoT returns the private key as PKCS#1 ("RSA PRIVATE KEY").
  const privateKey = createPrivateKey(keys.privateKeyPem).export({ type: "pkcs1", format: "pem" }).toString();
  return {
    certificateArn: record.certificateArn,
    certificateId: record.certificateId,
    certificatePem: record.certificatePem,
    keyPair: { PublicKey: keys.publicKeyPem, PrivateKey: privateKey },
  };
}

function describeCertificate(context: EmulatorContext, request: OperationRequest) {
  return { certificateDescription: describeCertificateRecord(existing(context, request)) };
}

function updateCertificate(context: EmulatorContext, request: OperationRequest) {
  const record = existing(context, request);
  const newStatus = parseInput(statusSchema, request.query.get("newStatus") ?? undefined, "newStatus");
  if (newStatus === "PENDING_TRANSFER" || newStatus === "PENDING_ACTIVATION") {
    throw invalidRequest(`The status cannot be set to ${newStatus} with UpdateCertificate.`);
  }
  if (record.status === "REVOKED" && newStatus !== "REVOKED") {
    throw certificateState(`Certificate ${record.certificateId} is revoked; its status cannot change.`);
  }
  if (record.status === "PENDING_TRANSFER") {
    throw certificateState(`Certificate ${record.certificateId} is pending transfer.`);
  }
  context.state.setCertificateStatus(record.certificateId, newStatus, context.now());
}

function deleteCertificate(context: EmulatorContext, request: OperationRequest) {
  const record = existing(context, request);
  const force = queryBoolean(request.query, "forceDelete") ?? false;
  if (record.status === "ACTIVE" || record.status === "PENDING_TRANSFER") {
    throw certificateState(
      `Certificate ${record.certificateId} is ${record.status}; deactivate it before deleting it.`,
    );
  }
  if (context.state.principalThings(record.certificateArn).length > 0) {
    throw deleteConflict(`Certificate ${record.certificateId} is attached to a thing; detach it first.`);
  }
  if (!force && context.state.attachedPolicies(record.certificateArn).length > 0) {
    throw deleteConflict(
      `Certificate ${record.certificateId} has policies attached; detach them or use forceDelete.`,
    );
  }
  context.state.deleteCertificate(record.certificateId);
}

function certificatePage(request: OperationRequest, certificates: CertificateRecord[]) {
  const pageSize = queryInteger(request.query, "pageSize", 1, 250) ?? 25;
  const ascending = queryBoolean(request.query, "isAscendingOrder") ?? false;
  const { page, nextToken } = paginate(
    certificates,
    request.query.get("marker"),
    pageSize,
    (c) => creationKey(c.creationDate, c.certificateId),
    { descending: !ascending },
  );
  return {
    certificates: page.map((c) => ({
      certificateArn: c.certificateArn,
      certificateId: c.certificateId,
      status: c.status,
      certificateMode: c.certificateMode,
      creationDate: epochSeconds(c.creationDate),
    })),
    ...(nextToken ? { nextMarker: nextToken } : {}),
  };
}

function listCertificates(context: EmulatorContext, request: OperationRequest) {
  return certificatePage(request, context.state.listCertificates());
}

function listCertificatesByCa(context: EmulatorContext, request: OperationRequest) {
  const caId = parseInput(certificateIdSchema, request.labels.caCertificateId, "caCertificateId");
  return certificatePage(
    request,
    context.state.listCertificates().filter((c) => c.caCertificateId === caId),
  );
}

/**
 * ResourceAlreadyExistsException when the certificate is registered already, whatever else is
 * wrong with the request (its CA, its status): AWS IoT answers so first
 * (https://docs.aws.amazon.com/iot/latest/apireference/API_RegisterCertificate.html).
 */
async function refuseRegistered(context: EmulatorContext, certificatePem: string): Promise<void> {
  let id: string;
  try {
    id = (await parseCertificate(certificatePem)).id;
  } catch {
    return; // not readable: the checks that follow say why
  }
  const known = context.state.certificate(id);
  if (known) {
    throw alreadyExists("The certificate is already registered.", known.certificateId, known.certificateArn);
  }
}

async function registerCertificate(context: EmulatorContext, request: OperationRequest) {
  const body = parseInput(registerBody, request.body ?? {});
  await refuseRegistered(context, body.certificatePem);
  const status = initialStatus(request, body.status);
  const { record } = await certificateFromRegisteredCa(
    context,
    body.certificatePem,
    body.caCertificatePem,
    status,
  );
  insertCertificate(context, record);
  return { certificateArn: record.certificateArn, certificateId: record.certificateId };
}

async function registerCertificateWithoutCa(context: EmulatorContext, request: OperationRequest) {
  const body = parseInput(registerWithoutCaBody, request.body ?? {});
  await refuseRegistered(context, body.certificatePem);
  const status = initialStatus(request, body.status);
  const certificate = await readDeviceCertificate(context, body.certificatePem);
  const record = {
    ...newCertificateRecord(context, certificate, status),
    certificateMode: "SNI_ONLY" as const,
  };
  insertCertificate(context, record);
  return { certificateArn: record.certificateArn, certificateId: record.certificateId };
}

/** Routes of the certificate operations. */
export const certificateRoutes: Route[] = [
  {
    operation: "CreateCertificateFromCsr",
    method: "POST",
    path: "/certificates",
    handler: createCertificateFromCsr,
  },
  {
    operation: "CreateKeysAndCertificate",
    method: "POST",
    path: "/keys-and-certificate",
    handler: createKeysAndCertificate,
  },
  {
    operation: "DescribeCertificate",
    method: "GET",
    path: "/certificates/{certificateId}",
    handler: describeCertificate,
  },
  {
    operation: "UpdateCertificate",
    method: "PUT",
    path: "/certificates/{certificateId}",
    handler: updateCertificate,
  },
  {
    operation: "DeleteCertificate",
    method: "DELETE",
    path: "/certificates/{certificateId}",
    handler: deleteCertificate,
  },
  { operation: "ListCertificates", method: "GET", path: "/certificates", handler: listCertificates },
  {
    operation: "ListCertificatesByCA",
    method: "GET",
    path: "/certificates-by-ca/{caCertificateId}",
    handler: listCertificatesByCa,
  },
  {
    operation: "RegisterCertificate",
    method: "POST",
    path: "/certificate/register",
    handler: registerCertificate,
  },
  {
    operation: "RegisterCertificateWithoutCA",
    method: "POST",
    path: "/certificate/register-no-ca",
    handler: registerCertificateWithoutCa,
  },
];
