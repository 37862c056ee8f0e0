import type { Command } from "commander";
import { IotDataPublisher } from "#adapters/iot-data-publisher.ts";
import { requestRotations } from "#core/rotation/request-rotations.ts";
import { CliError } from "../cli-error.ts";
import { progressBar } from "../progress.ts";
import { resolveTarget, type TargetOptions, withServices, withTargetOptions } from "../wiring.ts";

type RotateOptions = TargetOptions & {
  productKey?: string;
  expiringWithin?: string;
  dryRun?: boolean;
  json?: boolean;
};

/** `30d`, `12h`, `90m` or seconds: a duration in ms. */
export function parseDuration(text: string): number {
  const match = /^(\d+)\s*([dhm]?)$/.exec(text.trim());
  if (!match) throw new CliError(`--expiring-within must be like 30d, 12h or 90m; got "${text}".`);
  const unit = { d: 86_400_000, h: 3_600_000, m: 60_000, "": 1000 }[match[2] as "d" | "h" | "m" | ""];
  return Number(match[1]) * unit;
}

/** Adds `rotate` to the `onramp registry` command. */
export function registerRotateCommand(registry: Command): void {
  withTargetOptions(
    registry
      .command("rotate")
      .description(
        "Ask devices to rotate their certificates (a message on things/{thing}/certificates/rotate/required) and report each one's state: asked, pending (rotating), skipped (not expiring)",
      )
      .argument("[serial]", "one device")
      .option("--product-key <key>", "every provisioned device of a product")
      .option("--expiring-within <duration>", "only certificates expiring within this (30d, 12h, 90m)")
      .option("--dry-run", "report who would be asked; send nothing")
      .option("--json", "print JSON")
      .addHelpText(
        "after",
        [
          "",
          "Run it again later to see who rotated: a device whose new certificate no longer expires soon is skipped.",
          "",
          "Examples:",
          "  onramp registry rotate DEMO-0001",
          "  onramp registry rotate --product-key demo --expiring-within 30d --dry-run",
        ].join("\n"),
      ),
  ).action(async (serial: string | undefined, options: RotateOptions) => {
    if ((serial === undefined) === (options.productKey === undefined)) {
      throw new CliError("Name exactly one of: a SERIAL, or --product-key K.");
    }
    const expiringWithinMs =
      options.expiringWithin === undefined ? undefined : parseDuration(options.expiringWithin);
    const target = await resolveTarget(options);
    const progress = progressBar("checking", undefined, !options.json);
    const statuses = await withServices(options, async (services) => {
      if (options.productKey && !(await services.registry.getProduct(options.productKey))) {
        throw new CliError(`Unknown product ${options.productKey}.`);
      }
      // The data plane: locally the stack's AWS endpoint (its Publish reaches the MQTT endpoint).
      const publisher =
        target.kind === "local" && target.awsEndpoint
          ? new IotDataPublisher(async () => target.awsEndpoint!, {
              region: target.region,
              ...(target.credentials ? { credentials: target.credentials } : {}),
            })
          : new IotDataPublisher(() => services.iot.getDataEndpoint(), { region: target.region });
      return requestRotations(
        { ...services, publisher },
        serial !== undefined ? { serialNumber: serial } : { productKey: options.productKey! },
        {
          ...(expiringWithinMs !== undefined ? { expiringWithinMs } : {}),
          dryRun: options.dryRun === true,
          onProgress: (done) => progress.update(done),
        },
      );
    }).finally(() => progress.stop());
    if (options.json) {
      process.stdout.write(
        `${JSON.stringify({ devices: statuses, dryRun: options.dryRun === true }, null, 2)}\n`,
      );
      return;
    }
    for (const s of statuses) {
      process.stdout.write(
        `${s.serialNumber}\t${s.state}${options.dryRun && s.state === "asked" ? " (dry run)" : ""}\tnotAfter ${s.notAfter}\n`,
      );
    }
    const count = (state: string) => statuses.filter((s) => s.state === state).length;
    process.stdout.write(
      `asked ${count("asked")}, rotating ${count("pending")}, not expiring ${count("skipped")}\n`,
    );
  });
}
