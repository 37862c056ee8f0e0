import {
  AddThingToThingGroupCommand,
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreateCertificateFromCsrCommand,
  CreateKeysAndCertificateCommand,
  CreateThingCommand,
  CreateThingGroupCommand,
  DeleteCertificateCommand,
  DeleteThingCommand,
  DescribeCertificateCommand,
  DescribeEndpointCommand,
  DescribeThingCommand,
  DescribeThingGroupCommand,
  DetachPolicyCommand,
  DetachThingPrincipalCommand,
  type IoTClient,
  ListAttachedPoliciesCommand,
  ListCertificatesCommand,
  ListPrincipalThingsCommand,
  ListThingGroupsForThingCommand,
  ListThingPrincipalsCommand,
  RegisterThingCommand,
  UpdateCertificateCommand,
} from "@aws-sdk/client-iot";
import type { DescribedCertificate, JitrIot } from "#core/jitr/ports.ts";
import type { ReconcileIot } from "#core/registry/reconcile-devices.ts";
import type { CertificateAttachments, CreatedCertificate, IotProvisioning } from "#core/vending/ports.ts";
import { aws, isAwsError, translateAwsError } from "./aws-errors.ts";

export type AwsIotProvisioningOptions = {
  /**
   * Each call (all its SDK attempts and backoff sleeps) is aborted after this many ms
   * (`abortSignal`): the synchronous vend path bounds every call so the flow, its undo included,
   * ends well inside the function's timeout. None: the SDK's own limits.
   */
  callTimeoutMs?: number;
};

/** The provisioning flows' AWS IoT port (vending and JITR) on the control plane (AWS or the emulator). */
export class AwsIotProvisioning implements IotProvisioning, JitrIot, ReconcileIot {
  private dataEndpoint: Promise<string> | undefined;
  /** Thing group ARNs whose device policy this instance has attached (once per group and instance). */
  private readonly groupsReady = new Map<string, Promise<string>>();

  constructor(
    private readonly client: IoTClient,
    private readonly options: AwsIotProvisioningOptions = {},
  ) {}

  private callOptions(): { abortSignal?: AbortSignal } | undefined {
    const ms = this.options.callTimeoutMs;
    return ms === undefined ? undefined : { abortSignal: AbortSignal.timeout(ms) };
  }

  async createCertificateFromCsr(
    csrPem: string,
    options: { setAsActive?: boolean } = {},
  ): Promise<CreatedCertificate> {
    const out = await aws("CreateCertificateFromCsr", () =>
      this.client.send(
        new CreateCertificateFromCsrCommand({
          certificateSigningRequest: csrPem,
          setAsActive: options.setAsActive === true,
        }),
        this.callOptions(),
      ),
    );
    return created(out);
  }

  async createKeysAndCertificate(
    options: { setAsActive?: boolean } = {},
  ): Promise<CreatedCertificate & { privateKeyPem: string }> {
    const out = await aws("CreateKeysAndCertificate", () =>
      this.client.send(
        new CreateKeysAndCertificateCommand({ setAsActive: options.setAsActive === true }),
        this.callOptions(),
      ),
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
      this.client.send(new RegisterThingCommand({ templateBody, parameters }), this.callOptions()),
    );
    const thingArn = out.resourceArns?.thing;
    return thingArn ? { thingArn } : {};
  }

  async describeCertificate(certificateId: string): Promise<DescribedCertificate | undefined> {
    try {
      const { certificateDescription: d } = await this.client.send(
        new DescribeCertificateCommand({ certificateId }),
        this.callOptions(),
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
        this.client.send(
          new ListAttachedPoliciesCommand({ target: principal, recursive: false }),
          this.callOptions(),
        ),
      ),
      aws("ListPrincipalThings", () =>
        this.client.send(new ListPrincipalThingsCommand({ principal }), this.callOptions()),
      ),
    ]);
    const own = (policies.policies ?? []).flatMap((p) => (p.policyName ? [p.policyName] : []));
    const thingNames = things.things ?? [];
    // A certificate provisioned on the direct path has no policy of its own: its thing inherits the
    // product's from its thing group. Those count as the certificate's permissions.
    const inherited = own.length === 0 ? await this.thingGroupPolicies(thingNames) : [];
    return {
      certificateId,
      certificateArn: principal,
      status: current.status,
      things: thingNames,
      policies: [...new Set([...own, ...inherited])],
    };
  }

  /** Policies the things inherit from their thing groups (and those groups' parents). */
  private async thingGroupPolicies(thingNames: string[]): Promise<string[]> {
    const names: string[] = [];
    for (const thingName of thingNames) {
      for (const groupArn of await this.thingGroupArns(thingName)) {
        const attached = await aws("ListAttachedPolicies", () =>
          this.client.send(
            new ListAttachedPoliciesCommand({ target: groupArn, recursive: true }),
            this.callOptions(),
          ),
        );
        for (const p of attached.policies ?? []) if (p.policyName) names.push(p.policyName);
      }
    }
    return names;
  }

  private async thingGroupArns(thingName: string): Promise<string[]> {
    try {
      const out = await this.client.send(
        new ListThingGroupsForThingCommand({ thingName }),
        this.callOptions(),
      );
      return (out.thingGroups ?? []).flatMap((g) => (g.groupArn ? [g.groupArn] : []));
    } catch (error) {
      if (isAwsError(error, "ResourceNotFoundException")) return [];
      throw translateAwsError(error, "ListThingGroupsForThing");
    }
  }

  async attachThingPrincipal(
    thingName: string,
    certificateId: string,
    certificateArn?: string,
  ): Promise<void> {
    const principal =
      certificateArn ??
      (await this.describeCertificate(certificateId))?.certificateArn ??
      translateAwsErrorThrow("AttachThingPrincipal");
    await aws("AttachThingPrincipal", () =>
      this.client.send(new AttachThingPrincipalCommand({ thingName, principal }), this.callOptions()),
    );
  }

  async addThingToPolicyGroup(thingName: string, thingGroupName: string, policyName: string): Promise<void> {
    await this.policyGroup(thingGroupName, policyName);
    await aws("AddThingToThingGroup", () =>
      this.client.send(new AddThingToThingGroupCommand({ thingName, thingGroupName }), this.callOptions()),
    );
  }

  /**
   * The product's thing group with its device policy attached, made once per group and Lambda
   * instance: DescribeThingGroup (CreateThingGroup when missing), then AttachPolicy on the group's
   * ARN (idempotent). A failure is not cached, so the next call tries again.
   */
  private policyGroup(thingGroupName: string, policyName: string): Promise<string> {
    const key = `${thingGroupName}\n${policyName}`;
    let ready = this.groupsReady.get(key);
    if (!ready) {
      ready = (async () => {
        const arn = await this.ensureThingGroup(thingGroupName);
        await aws("AttachPolicy", () =>
          this.client.send(new AttachPolicyCommand({ policyName, target: arn }), this.callOptions()),
        );
        return arn;
      })();
      ready.catch(() => this.groupsReady.delete(key));
      this.groupsReady.set(key, ready);
    }
    return ready;
  }

  private async ensureThingGroup(thingGroupName: string): Promise<string> {
    const describe = async () => {
      try {
        const out = await this.client.send(
          new DescribeThingGroupCommand({ thingGroupName }),
          this.callOptions(),
        );
        return out.thingGroupArn;
      } catch (error) {
        if (isAwsError(error, "ResourceNotFoundException")) return undefined;
        throw translateAwsError(error, "DescribeThingGroup");
      }
    };
    const found = await describe();
    if (found) return found;
    try {
      const out = await this.client.send(
        new CreateThingGroupCommand({
          thingGroupName,
          thingGroupProperties: {
            thingGroupDescription: "iot-onramp: devices of one product (device policy)",
          },
        }),
        this.callOptions(),
      );
      if (out.thingGroupArn) return out.thingGroupArn;
    } catch (error) {
      if (!isAwsError(error, "ResourceAlreadyExistsException"))
        throw translateAwsError(error, "CreateThingGroup");
    }
    return (await describe()) ?? translateAwsErrorThrow("CreateThingGroup");
  }

  async setCertificateStatus(
    certificateId: string,
    status: "ACTIVE" | "INACTIVE" | "REVOKED",
  ): Promise<void> {
    await aws("UpdateCertificate", () =>
      this.client.send(
        new UpdateCertificateCommand({ certificateId, newStatus: status }),
        this.callOptions(),
      ),
    );
  }

  async destroyCertificate(certificateId: string): Promise<void> {
    const current = await this.describeCertificate(certificateId);
    if (!current) return;
    await this.detachArn(current.certificateArn);
    if (current.status !== "REVOKED") await this.setCertificateStatus(certificateId, "REVOKED");
    try {
      await this.client.send(
        new DeleteCertificateCommand({ certificateId, forceDelete: true }),
        this.callOptions(),
      );
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
      this.client.send(new ListAttachedPoliciesCommand({ target, recursive: false }), this.callOptions()),
    );
    for (const { policyName } of policies.policies ?? []) {
      await aws("DetachPolicy", () =>
        this.client.send(new DetachPolicyCommand({ policyName, target }), this.callOptions()),
      );
    }
    const things = await aws("ListPrincipalThings", () =>
      this.client.send(new ListPrincipalThingsCommand({ principal: target }), this.callOptions()),
    );
    for (const thingName of things.things ?? []) {
      await aws("DetachThingPrincipal", () =>
        this.client.send(
          new DetachThingPrincipalCommand({ thingName, principal: target }),
          this.callOptions(),
        ),
      );
    }
  }

  async createThing(thingName: string, attributes: Record<string, string>): Promise<void> {
    try {
      await this.client.send(
        new CreateThingCommand({ thingName, attributePayload: { attributes } }),
        this.callOptions(),
      );
    } catch (error) {
      if (!isAwsError(error, "ResourceAlreadyExistsException")) throw translateAwsError(error, "CreateThing");
    }
  }

  async describeThing(thingName: string): Promise<{ attributes: Record<string, string> } | undefined> {
    try {
      const out = await this.client.send(new DescribeThingCommand({ thingName }), this.callOptions());
      return { attributes: out.attributes ?? {} };
    } catch (error) {
      if (isAwsError(error, "ResourceNotFoundException")) return undefined;
      throw translateAwsError(error, "DescribeThing");
    }
  }

  async deleteThingIfUnused(thingName: string): Promise<void> {
    try {
      const { principals } = await this.client.send(
        new ListThingPrincipalsCommand({ thingName }),
        this.callOptions(),
      );
      if ((principals ?? []).length > 0) return;
      await this.client.send(new DeleteThingCommand({ thingName }), this.callOptions());
    } catch (error) {
      if (!isAwsError(error, "ResourceNotFoundException")) throw translateAwsError(error, "DeleteThing");
    }
  }

  async listThingCertificates(thingName: string): Promise<string[]> {
    try {
      const ids: string[] = [];
      let nextToken: string | undefined;
      do {
        const page = await this.client.send(
          new ListThingPrincipalsCommand({ thingName, nextToken }),
          this.callOptions(),
        );
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
        this.client.send(new ListCertificatesCommand({ pageSize: 250, marker }), this.callOptions()),
      );
      for (const c of page.certificates ?? []) {
        if (c.certificateId && c.status) yield { certificateId: c.certificateId, status: c.status };
      }
      marker = page.nextMarker;
    } while (marker);
  }

  async deleteUnattachedCertificate(certificateId: string): Promise<void> {
    try {
      // The direct path creates certificates ACTIVE; AWS IoT deletes only inactive ones.
      const current = await this.describeCertificate(certificateId);
      if (!current) return;
      if (current.status === "ACTIVE") await this.setCertificateStatus(certificateId, "REVOKED");
      await this.client.send(
        new DeleteCertificateCommand({ certificateId, forceDelete: true }),
        this.callOptions(),
      );
    } catch (error) {
      if (!isAwsError(error, "ResourceNotFoundException"))
        throw translateAwsError(error, "DeleteCertificate");
    }
  }

  getDataEndpoint(): Promise<string> {
    this.dataEndpoint ??= aws("DescribeEndpoint", async () => {
      const { endpointAddress } = await this.client.send(
        new DescribeEndpointCommand({ endpointType: "iot:Data-ATS" }),
        this.callOptions(),
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

function translateAwsErrorThrow(operation: string): never {
  throw translateAwsError(new Error("incomplete response"), operation);
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
