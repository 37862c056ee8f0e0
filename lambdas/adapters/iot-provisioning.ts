import {
  CreateCertificateFromCsrCommand,
  CreateKeysAndCertificateCommand,
  CreateThingCommand,
  DeleteCertificateCommand,
  DeleteThingCommand,
  DescribeCertificateCommand,
  DescribeEndpointCommand,
  DescribeThingCommand,
  DetachPolicyCommand,
  DetachThingPrincipalCommand,
  type IoTClient,
  ListAttachedPoliciesCommand,
  ListCertificatesCommand,
  ListPrincipalThingsCommand,
  ListThingPrincipalsCommand,
  RegisterThingCommand,
  UpdateCertificateCommand,
} from "@aws-sdk/client-iot";
import type { DescribedCertificate, JitrIot } from "#core/jitr/ports.ts";
import type { ReconcileIot } from "#core/registry/reconcile-devices.ts";
import type { CertificateAttachments, CreatedCertificate, IotProvisioning } from "#core/vending/ports.ts";
import { aws, isAwsError, translateAwsError } from "./aws-errors.ts";

/** The provisioning flows' AWS IoT port (vending and JITR) on the control plane (AWS or the emulator). */
export class AwsIotProvisioning implements IotProvisioning, JitrIot, ReconcileIot {
  private dataEndpoint: Promise<string> | undefined;

  constructor(private readonly client: IoTClient) {}

  async createCertificateFromCsr(csrPem: string): Promise<CreatedCertificate> {
    const out = await aws("CreateCertificateFromCsr", () =>
      this.client.send(
        new CreateCertificateFromCsrCommand({ certificateSigningRequest: csrPem, setAsActive: false }),
      ),
    );
    return created(out);
  }

  async createKeysAndCertificate(): Promise<CreatedCertificate & { privateKeyPem: string }> {
    const out = await aws("CreateKeysAndCertificate", () =>
      this.client.send(new CreateKeysAndCertificateCommand({ setAsActive: false })),
    );
    if (!out.keyPair?.PrivateKey)
      throw translateAwsError(new Error("no key pair returned"), "CreateKeysAndCertificate");
    return { ...created(out), privateKeyPem: out.keyPair.PrivateKey };
  }

  async registerThing(
    templateBody: string,
    parameters: Record<string, string>,
  ): Promise<{ thingArn?: string }> {
    const out = await aws("RegisterThing", () =>
      this.client.send(new RegisterThingCommand({ templateBody, parameters })),
    );
    const thingArn = out.resourceArns?.thing;
    return thingArn ? { thingArn } : {};
  }

  async describeCertificate(certificateId: string): Promise<DescribedCertificate | undefined> {
    try {
      const { certificateDescription: d } = await this.client.send(
        new DescribeCertificateCommand({ certificateId }),
      );
      if (!d?.certificatePem || !d.certificateArn || !d.status) return undefined;
      return {
        certificateId,
        certificateArn: d.certificateArn,
        certificatePem: d.certificatePem,
        status: d.status,
        ...(d.caCertificateId ? { caCertificateId: d.caCertificateId } : {}),
      };
    } catch (error) {
      if (isAwsError(error, "ResourceNotFoundException")) return undefined;
      throw translateAwsError(error, "DescribeCertificate");
    }
  }

  async inspectCertificate(certificateId: string): Promise<CertificateAttachments | undefined> {
    const current = await this.describeCertificate(certificateId);
    if (!current) return undefined;
    const principal = current.certificateArn;
    const [policies, things] = await Promise.all([
      aws("ListAttachedPolicies", () =>
        this.client.send(new ListAttachedPoliciesCommand({ target: principal, recursive: false })),
      ),
      aws("ListPrincipalThings", () => this.client.send(new ListPrincipalThingsCommand({ principal }))),
    ]);
    return {
      certificateId,
      certificateArn: principal,
      status: current.status,
      things: things.things ?? [],
      policies: (policies.policies ?? []).flatMap((p) => (p.policyName ? [p.policyName] : [])),
    };
  }

  async setCertificateStatus(
    certificateId: string,
    status: "ACTIVE" | "INACTIVE" | "REVOKED",
  ): Promise<void> {
    await aws("UpdateCertificate", () =>
      this.client.send(new UpdateCertificateCommand({ certificateId, newStatus: status })),
    );
  }

  async destroyCertificate(certificateId: string): Promise<void> {
    const current = await this.describeCertificate(certificateId);
    if (!current) return;
    await this.detachArn(current.certificateArn);
    if (current.status !== "REVOKED") await this.setCertificateStatus(certificateId, "REVOKED");
    try {
      await this.client.send(new DeleteCertificateCommand({ certificateId, forceDelete: true }));
    } catch (error) {
      if (!isAwsError(error, "ResourceNotFoundException"))
        throw translateAwsError(error, "DeleteCertificate");
    }
  }

  async detachCertificate(certificateId: string): Promise<void> {
    const current = await this.describeCertificate(certificateId);
    if (current) await this.detachArn(current.certificateArn);
  }

  /** Detaches every policy and thing from a certificate ARN. */
  private async detachArn(target: string): Promise<void> {
    const policies = await aws("ListAttachedPolicies", () =>
      this.client.send(new ListAttachedPoliciesCommand({ target, recursive: false })),
    );
    for (const { policyName } of policies.policies ?? []) {
      await aws("DetachPolicy", () => this.client.send(new DetachPolicyCommand({ policyName, target })));
    }
    const things = await aws("ListPrincipalThings", () =>
      this.client.send(new ListPrincipalThingsCommand({ principal: target })),
    );
    for (const thingName of things.things ?? []) {
      await aws("DetachThingPrincipal", () =>
        this.client.send(new DetachThingPrincipalCommand({ thingName, principal: target })),
      );
    }
  }

  async createThing(thingName: string, attributes: Record<string, string>): Promise<void> {
    try {
      await this.client.send(new CreateThingCommand({ thingName, attributePayload: { attributes } }));
    } catch (error) {
      if (!isAwsError(error, "ResourceAlreadyExistsException")) throw translateAwsError(error, "CreateThing");
    }
  }

  async describeThing(thingName: string): Promise<{ attributes: Record<string, string> } | undefined> {
    try {
      const out = await this.client.send(new DescribeThingCommand({ thingName }));
      return { attributes: out.attributes ?? {} };
    } catch (error) {
      if (isAwsError(error, "ResourceNotFoundException")) return undefined;
      throw translateAwsError(error, "DescribeThing");
    }
  }

  async deleteThingIfUnused(thingName: string): Promise<void> {
    try {
      const { principals } = await this.client.send(new ListThingPrincipalsCommand({ thingName }));
      if ((principals ?? []).length > 0) return;
      await this.client.send(new DeleteThingCommand({ thingName }));
    } catch (error) {
      if (!isAwsError(error, "ResourceNotFoundException")) throw translateAwsError(error, "DeleteThing");
    }
  }

  async listThingCertificates(thingName: string): Promise<string[]> {
    try {
      const ids: string[] = [];
      let nextToken: string | undefined;
      do {
        const page = await this.client.send(new ListThingPrincipalsCommand({ thingName, nextToken }));
        for (const arn of page.principals ?? []) {
          const match = /:cert\/([0-9a-f]{64})$/.exec(arn);
          if (match) ids.push(match[1]!);
        }
        nextToken = page.nextToken;
      } while (nextToken);
      return ids;
    } catch (error) {
      if (isAwsError(error, "ResourceNotFoundException")) return [];
      throw translateAwsError(error, "ListThingPrincipals");
    }
  }

  async *listCertificates(): AsyncIterable<{ certificateId: string; status: string }> {
    let marker: string | undefined;
    do {
      const page = await aws("ListCertificates", () =>
        this.client.send(new ListCertificatesCommand({ pageSize: 250, marker })),
      );
      for (const c of page.certificates ?? []) {
        if (c.certificateId && c.status) yield { certificateId: c.certificateId, status: c.status };
      }
      marker = page.nextMarker;
    } while (marker);
  }

  async deleteUnattachedCertificate(certificateId: string): Promise<void> {
    try {
      await this.client.send(new DeleteCertificateCommand({ certificateId, forceDelete: true }));
    } catch (error) {
      if (!isAwsError(error, "ResourceNotFoundException"))
        throw translateAwsError(error, "DeleteCertificate");
    }
  }

  getDataEndpoint(): Promise<string> {
    this.dataEndpoint ??= aws("DescribeEndpoint", async () => {
      const { endpointAddress } = await this.client.send(
        new DescribeEndpointCommand({ endpointType: "iot:Data-ATS" }),
      );
      if (!endpointAddress) throw new Error("no endpoint address");
      return endpointAddress;
    }).catch((error: unknown) => {
      this.dataEndpoint = undefined;
      throw error;
    });
    return this.dataEndpoint;
  }
}

function created(out: {
  certificateId?: string;
  certificateArn?: string;
  certificatePem?: string;
}): CreatedCertificate {
  if (!out.certificateId || !out.certificateArn || !out.certificatePem) {
    throw translateAwsError(new Error("incomplete certificate response"), "CreateCertificate");
  }
  return {
    certificateId: out.certificateId,
    certificateArn: out.certificateArn,
    certificatePem: out.certificatePem,
  };
}
