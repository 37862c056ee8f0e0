import type { Command } from "commander";
import {
  buildEnosPsk,
  ENOS_PSK_LIFETIME_MAX,
  type EnosPskIdentity,
  parseEnosPskIdentity,
} from "#credentials/enos-psk.ts";
import { type CoapsConnection, connectCoaps } from "#gateway/coap/coaps-client.ts";
import { ContentFormat } from "#gateway/coap/index.ts";
import { readEndpointsFile } from "#local/endpoints-file.ts";
import { CliError } from "../cli-error.ts";
import { DEFAULT_ENDPOINTS_FILE } from "../wiring.ts";

type CoapOptions = {
  identity: string;
  secret?: string;
  host?: string;
  port?: string;
  endpoints?: string;
  post?: string;
  payload: string;
  activate?: boolean;
  timeout: string;
  json?: boolean;
};

type Step = { step: string; ok: boolean; [detail: string]: unknown };

/**
 * `onramp device coap`: what an EnOS NB-IoT device does over CoAP/DTLS-PSK (seed 000), step by
 * step, for firmware developers: the handshake with the identity's PSK, SecureMode 3 activation
 * (the device secret), SecureMode 2 login with it, and a POST to one of its topics. Prints each
 * step as it happens (or one JSON document with --json), and the coap-client-openssl line that
 * does the same.
 */
export function registerDeviceCoapCommand(device: Command): void {
  device
    .command("coap")
    .description("Talk CoAP over DTLS-PSK like an EnOS NB-IoT device: handshake, activation, POST")
    .requiredOption("--identity <identity>", "PSK identity {ProductKey},{DeviceKey},{SecureMode},{Lifetime}")
    .option(
      "--secret <secret>",
      "DeviceSecret (SecureMode 2) or ProductSecret (SecureMode 3); or env ONRAMP_DEVICE_SECRET",
    )
    .option("--host <host>", "gateway address (default: the local stack's)")
    .option("--port <port>", "gateway UDP port (default: the local stack's, else 5684)")
    .option("--endpoints <file>", "the local stack's endpoints file", DEFAULT_ENDPOINTS_FILE)
    .option("--activate", "SecureMode 3: ask for the device secret, then log in with SecureMode 2")
    .option(
      "--post <path>",
      "POST to this path after login, e.g. /topic/sys/{pk}/{dk}/thing/measurepoint/post",
    )
    .option("--payload <json>", "the POST's JSON body", '{"id":"1","version":"1.0","params":{}}')
    .option("--timeout <seconds>", "give up on a step after this long", "20")
    .option("--json", "print one JSON document (includes the device secret an activation returned)")
    .addHelpText(
      "after",
      [
        "",
        "Examples:",
        "  onramp device coap --identity 'pk,dev-1,2,3600' --secret \"$DEVICE_SECRET\" \\",
        "    --post /topic/sys/pk/dev-1/thing/measurepoint/post --payload '{\"params\":{}}'",
        "  onramp device coap --identity 'pk,dev-1,3,3600' --secret \"$PRODUCT_SECRET\" --activate \\",
        "    --post /topic/sys/pk/dev-1/thing/measurepoint/post",
      ].join("\n"),
    )
    .action(async (options: CoapOptions) => {
      const secret = options.secret ?? process.env.ONRAMP_DEVICE_SECRET;
      if (!secret) throw new CliError("--secret (or ONRAMP_DEVICE_SECRET) is required");
      let identity: EnosPskIdentity;
      try {
        identity = parseEnosPskIdentity(options.identity);
      } catch (error) {
        throw new CliError(`--identity: ${(error as Error).message}`, 2, "INVALID_INPUT");
      }
      if (options.activate && identity.secureMode !== 3)
        throw new CliError(
          "--activate needs a SecureMode 3 identity (pk,dk,3,lifetime) and the product secret",
          2,
        );
      if (options.post !== undefined) {
        try {
          JSON.parse(options.payload);
        } catch {
          throw new CliError("--payload must be JSON", 2, "INVALID_INPUT");
        }
      }
      const timeoutMs = Number(options.timeout) * 1000;
      if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > ENOS_PSK_LIFETIME_MAX * 1000)
        throw new CliError("--timeout must be a positive number of seconds", 2);
      const { host, port } = gatewayAddress(options);
      const steps: Step[] = [];
      const report = (step: Step) => {
        steps.push(step);
        if (options.json) return;
        const { step: name, ok, ...detail } = step;
        const text = Object.entries(detail)
          .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
          .join("  ");
        process.stdout.write(`${ok ? "ok  " : "FAIL"}  ${name.padEnd(10)}  ${text}\n`);
      };
      let deviceSecret: string | undefined;
      let failed: string | undefined;
      try {
        let session = await handshake(host, port, identity, secret, timeoutMs, report);
        if (identity.secureMode === 3 && options.activate) {
          try {
            const path = `/topic/ext/session/${identity.productKey}/${identity.deviceKey}/thing/activate/info`;
            const response = await session.coap.request({ method: "GET", path, timeoutMs });
            const ok = response.code === "2.05";
            const body = response.payload.toString("utf8");
            if (ok)
              deviceSecret = (JSON.parse(body) as { params: { deviceSecret: string } }).params.deviceSecret;
            report({
              step: "activate",
              ok,
              path,
              code: response.code,
              ...(ok ? { deviceSecret } : { body }),
            });
            if (!ok) throw new StepFailed(`activation answered ${response.code}`);
          } finally {
            await session.close();
          }
          session = await handshake(
            host,
            port,
            { ...identity, secureMode: 2 },
            deviceSecret as string,
            timeoutMs,
            report,
          );
        }
        try {
          if (options.post !== undefined) {
            const response = await session.coap.request({
              method: "POST",
              path: options.post,
              payload: options.payload,
              contentFormat: ContentFormat.json,
              timeoutMs,
            });
            const ok = response.code.startsWith("2.");
            report({
              step: "post",
              ok,
              path: options.post,
              code: response.code,
              ...(response.payload.length ? { body: response.payload.toString("utf8") } : {}),
            });
            if (!ok) throw new StepFailed(`the POST answered ${response.code}`);
          }
        } finally {
          await session.close();
        }
      } catch (error) {
        failed = error instanceof Error ? error.message : String(error);
      }
      if (options.json) {
        process.stdout.write(
          `${JSON.stringify({ ok: failed === undefined, host, port, steps, ...(deviceSecret ? { deviceSecret } : {}), ...(failed ? { error: failed } : {}) }, null, 2)}\n`,
        );
      }
      if (failed !== undefined) {
        if (options.json) process.exitCode = 1;
        else throw new CliError(failed, 1, "COAP_FAILED");
      }
    });
}

class StepFailed extends Error {}

async function handshake(
  host: string,
  port: number,
  identity: EnosPskIdentity,
  secret: string,
  timeoutMs: number,
  report: (step: Step) => void,
): Promise<CoapsConnection> {
  const psk = buildEnosPsk({ ...identity, secret });
  const coapClient = `coap-client-openssl -u '${psk.identity}' -k ${bashBytes(psk.key)} coaps://${host.includes(":") ? `[${host}]` : host}:${port}/...`;
  try {
    const connection = await connectCoaps({
      host,
      port,
      identity: psk.identity,
      key: psk.key,
      handshakeTimeoutMs: Math.min(timeoutMs, 30_000),
    });
    report({ step: "handshake", ok: true, identity: psk.identity, key: psk.keyHex, coapClient });
    return connection;
  } catch (error) {
    report({
      step: "handshake",
      ok: false,
      identity: psk.identity,
      key: psk.keyHex,
      why: "refused: a wrong key, an unknown, disabled or not yet activated device all look the same",
      error: (error as Error).message,
    });
    throw new StepFailed("the DTLS handshake failed");
  }
}

/** The key's raw bytes as bash $'\xNN' quoting (libcoap 4.3's -k takes no hex); zero bytes cannot be passed. */
function bashBytes(key: Uint8Array): string {
  if (key.includes(0)) return "'<this key has a 0x00 byte: coap-client -k cannot take it>'";
  return `$'${[...key].map((b) => `\\x${b.toString(16).padStart(2, "0")}`).join("")}'`;
}

function gatewayAddress(options: CoapOptions): { host: string; port: number } {
  let host = options.host;
  let port = options.port === undefined ? undefined : Number(options.port);
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535))
    throw new CliError("--port must be a UDP port (1-65535)", 2);
  if (host === undefined || port === undefined) {
    const coap = readEndpointsFile(options.endpoints ?? DEFAULT_ENDPOINTS_FILE)?.coap;
    if (typeof coap === "string") {
      const url = new URL(coap);
      host ??= url.hostname.replace(/^\[(.*)\]$/, "$1");
      port ??= Number(url.port);
    }
  }
  return { host: host ?? "127.0.0.1", port: port ?? 5684 };
}
