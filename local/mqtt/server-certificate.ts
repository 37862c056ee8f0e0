import { isIP } from "node:net";
import { type CertificateIssuer, createKeyPair } from "#core/pki/index.ts";

/** A TLS server identity: certificate and private key, PEM. Kept in memory only. */
export type ServerIdentity = { certPem: string; keyPem: string };

/**
 * Issues the local MQTT endpoint's server certificate with the emulator's root CA, so a device
 * verifies it with the `rootCaPem` the vending API returns, as it verifies AWS IoT with Amazon's
 * root. Names: `localhost`, `127.0.0.1`, `::1`, plus the listen host when it is another name.
 */
export async function issueServerIdentity(issuer: CertificateIssuer, host?: string): Promise<ServerIdentity> {
  const dnsNames = new Set(["localhost"]);
  const ipAddresses = new Set(["127.0.0.1", "::1"]);
  if (host && host !== "0.0.0.0" && host !== "::") {
    if (isIP(host)) ipAddresses.add(host);
    else dnsNames.add(host);
  }
  const keys = await createKeyPair("EC-P256");
  const issued = await issuer.issue({
    subjectPublicKey: keys.publicKeyPem,
    subject: { commonName: "localhost", organization: "iot-onramp local stack" },
    days: 397,
    extensions: {
      keyUsage: ["digitalSignature"],
      extendedKeyUsage: ["serverAuth"],
      dnsNames: [...dnsNames],
      ipAddresses: [...ipAddresses],
    },
  });
  return { certPem: issued.certificatePem, keyPem: keys.privateKeyPem };
}
