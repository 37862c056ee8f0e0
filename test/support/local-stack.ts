import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IoTClient } from "@aws-sdk/client-iot";
import type { Services } from "#adapters/services.ts";
import { requestCertificate } from "#cli/device/vend-client.ts";
import { type Logger, silentLogger } from "#core/logger.ts";
import { createProduct, type NewProduct } from "#core/registry/manage-products.ts";
import { deriveDeviceSecret } from "#credentials/derived-secret.ts";
import { localRegion } from "#local/local-aws.ts";
import { type LocalStack, type LocalStackOptions, startLocalStack } from "#local/stack.ts";

/**
 * The local stack in memory on free ports, for integration tests (silent unless given a logger).
 * Its AWS endpoint takes only its own key pair: clients use `stack.credentials`.
 */
export async function startTestStack(
  options: {
    dynamoFaultInjection?: boolean;
    logger?: Logger;
    sweepIntervalMs?: number;
    awsQuotas?: "default" | "off";
  } = {},
): Promise<LocalStack & { iotClient: IoTClient; stop(): Promise<void> }> {
  const stack = await startLocalStack({
    logger: options.logger ?? silentLogger,
    ports: { api: 0, aws: 0, dynamodb: 0, mqtt: 0 },
    dynamoFaultInjection: options.dynamoFaultInjection ?? false,
    ...(options.sweepIntervalMs ? { sweepIntervalMs: options.sweepIntervalMs } : {}),
    ...(options.awsQuotas ? { awsQuotas: options.awsQuotas } : {}),
  });
  const iotClient = new IoTClient({
    endpoint: stack.endpoints.aws,
    region: localRegion,
    credentials: stack.credentials,
    maxAttempts: 1,
  });
  return {
    ...stack,
    iotClient,
    async stop() {
      iotClient.destroy();
      await stack.close();
    },
  };
}

/** Creates a product with serials; returns a function giving each serial's signing secret. */
export async function seedProduct(
  services: Services,
  product: NewProduct,
  serials: string[],
): Promise<{ productSecret: string; secretFor(serial: string): string }> {
  const { secret } = await createProduct(services, product);
  await services.registry.importDevices(
    serials.map((serialNumber) => ({ serialNumber, productKey: product.productKey })),
  );
  return {
    productSecret: secret,
    secretFor: (serial) =>
      (product.authMode ?? "device-secret") === "device-secret" ? deriveDeviceSecret(secret, serial) : secret,
  };
}

/**
 * The local stack on free ports, the CoAP gateway's too, with the caller's logger (and binding
 * clock or limits): what the binding tests run against. Closed with `stack.close()`.
 */
export function startBindingStack(options: Omit<LocalStackOptions, "ports">): Promise<LocalStack> {
  return startLocalStack({ ...options, ports: { api: 0, aws: 0, dynamodb: 0, mqtt: 0, coap: 0 } });
}

/** A product of Alibaba devices (sign with a device secret) that bind to phone users, with serials. */
export function seedBindingProduct(
  services: Services,
  product: {
    productKey: string;
    name: string;
    ownership: "single-owner" | "shared";
    tokenTtlSeconds: number;
  },
  serials: string[],
): ReturnType<typeof seedProduct> {
  const { ownership, tokenTtlSeconds, ...rest } = product;
  return seedProduct(
    services,
    { ...rest, mqttAuth: { scheme: "aliyun" }, binding: { ownership, tokenTtlSeconds } },
    serials,
  );
}

/** Vends a certificate for `serial` with an openssl CSR (keyMode csr); the key and the certificate. */
export async function vendWithCsr(
  apiUrl: string,
  device: { productKey: string; serialNumber: string; secret: string },
): Promise<{ keyPem: string; certificatePem: string }> {
  const { csrPem, keyPem } = opensslCsr(device.serialNumber);
  const vended = await requestCertificate({ apiUrl, ...device, keyMode: "csr", csr: csrPem });
  assert.equal(vended.status, 201);
  return { keyPem, certificatePem: (vended.body as { certificatePem: string }).certificatePem };
}

/** A key and CSR made with openssl, as a device toolchain would. */
export function opensslCsr(
  commonName: string,
  key: "ec-p256" | "ec-p384" | "rsa-2048" | "rsa-1024" = "ec-p256",
) {
  const dir = mkdtempSync(join(tmpdir(), "onramp-csr-"));
  try {
    const keyFile = join(dir, "device.key");
    const csrFile = join(dir, "device.csr");
    const newkey =
      key === "ec-p256"
        ? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        : key === "ec-p384"
          ? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"]
          : ["-newkey", `rsa:${key.slice(4)}`];
    execFileSync(
      "openssl",
      ["req", "-new", ...newkey, "-nodes", "-keyout", keyFile, "-out", csrFile, "-subj", `/CN=${commonName}`],
      {
        stdio: "pipe",
      },
    );
    return { keyPem: readFileSync(keyFile, "utf8"), csrPem: readFileSync(csrFile, "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
