import {
  DescribeCACertificateCommand,
  DescribeCertificateCommand,
  DetachPolicyCommand,
  DetachThingPrincipalCommand,
  GetRegistrationCodeCommand,
  type IoTClient,
  ListAttachedPoliciesCommand,
  ListPrincipalThingsCommand,
  RegisterCACertificateCommand,
} from "@aws-sdk/client-iot";
import type {
  CaRegistrationConfig,
  CaRegistry,
  DescribedCaCertificate,
  DescribedCertificate,
  JitrIot,
} from "#core/jitr/ports.ts";
import { aws, isAwsError, translateAwsError } from "./aws-errors.ts";
import { AwsIotProvisioning } from "./iot-provisioning.ts";

/**
 * JitrIot on the AWS IoT control plane. The operations shared with vending are delegated to
 * AwsIotProvisioning; this class adds the CA id of a certificate and an undo that detaches without
 * touching the certificate's status.
 */
export class AwsJitrIot implements JitrIot {
  private readonly provisioning: AwsIotProvisioning;

  constructor(private readonly client: IoTClient) {
    this.provisioning = new AwsIotProvisioning(client);
  }

  registerThing(templateBody: string, parameters: Record<string, string>): Promise<{ thingArn?: string }> {
    return this.provisioning.registerThing(templateBody, parameters);
  }

  setCertificateStatus(certificateId: string, status: "ACTIVE" | "INACTIVE" | "REVOKED"): Promise<void> {
    return this.provisioning.setCertificateStatus(certificateId, status);
  }

  deleteThingIfUnused(thingName: string): Promise<void> {
    return this.provisioning.deleteThingIfUnused(thingName);
  }

  destroyCertificate(certificateId: string): Promise<void> {
    return this.provisioning.destroyCertificate(certificateId);
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

  async detachCertificate(certificateId: string): Promise<void> {
    const current = await this.describeCertificate(certificateId);
    if (!current) return;
    const target = current.certificateArn;
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
}

/** CaRegistry on the AWS IoT control plane. */
export class AwsCaRegistry implements CaRegistry {
  constructor(private readonly client: IoTClient) {}

  async getRegistrationCode(): Promise<string> {
    const { registrationCode } = await aws("GetRegistrationCode", () =>
      this.client.send(new GetRegistrationCodeCommand({})),
    );
    if (!registrationCode) throw translateAwsError(new Error("no registration code"), "GetRegistrationCode");
    return registrationCode;
  }

  async registerCaCertificate(request: {
    caCertificatePem: string;
    verificationCertificatePem: string;
    registrationConfig?: CaRegistrationConfig;
  }): Promise<{ registered: boolean }> {
    try {
      await this.client.send(
        new RegisterCACertificateCommand({
          caCertificate: request.caCertificatePem,
          verificationCertificate: request.verificationCertificatePem,
          setAsActive: true,
          allowAutoRegistration: true,
          certificateMode: "DEFAULT",
          ...(request.registrationConfig ? { registrationConfig: request.registrationConfig } : {}),
        }),
      );
      return { registered: true };
    } catch (error) {
      if (isAwsError(error, "ResourceAlreadyExistsException")) return { registered: false };
      throw translateAwsError(error, "RegisterCACertificate");
    }
  }

  async describeCaCertificate(caCertificateId: string): Promise<DescribedCaCertificate | undefined> {
    try {
      const { certificateDescription: d, registrationConfig } = await this.client.send(
        new DescribeCACertificateCommand({ certificateId: caCertificateId }),
      );
      if (!d?.certificateArn || !d.status) return undefined;
      return {
        certificateId: caCertificateId,
        certificateArn: d.certificateArn,
        status: d.status,
        autoRegistrationStatus: d.autoRegistrationStatus ?? "DISABLE",
        ...(registrationConfig?.templateBody ? { templateBody: registrationConfig.templateBody } : {}),
      };
    } catch (error) {
      if (isAwsError(error, "ResourceNotFoundException")) return undefined;
      throw translateAwsError(error, "DescribeCACertificate");
    }
  }
}
