import {
  DescribeCACertificateCommand,
  GetRegistrationCodeCommand,
  type IoTClient,
  RegisterCACertificateCommand,
} from "@aws-sdk/client-iot";
import type { CaRegistrationConfig, CaRegistry, DescribedCaCertificate } from "#core/jitr/ports.ts";
import { aws, isAwsError, translateAwsError } from "./aws-errors.ts";

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
