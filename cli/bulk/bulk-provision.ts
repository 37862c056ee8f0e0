import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  DescribeThingRegistrationTaskCommand,
  type IoTClient,
  ListThingRegistrationTaskReportsCommand,
  StartThingRegistrationTaskCommand,
} from "@aws-sdk/client-iot";
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { ConflictError } from "#core/errors.ts";
import { parseCsr, readCertificate } from "#core/pki/index.ts";
import { activateCommitted, type ClaimDeps, takeClaim } from "#core/registry/claims.ts";
import type { Device } from "#core/registry/model.ts";
import type { Registry } from "#core/registry/ports.ts";
import type { IotProvisioning } from "#core/vending/ports.ts";

/** One device to provision: its serial (the CSR's CN) and CSR, plus extra template parameters. */
export type BulkDevice = { serialNumber: string; csrPem: string; parameters?: Record<string, string> };

export type BulkOutcome =
  | "provisioned"
  | "already-provisioned"
  | "certificate-restored"
  | "skipped-disabled"
  | "skipped-revoked"
  | "skipped-in-progress"
  | "failed";

export type BulkDeviceResult = {
  serialNumber: string;
  outcome: BulkOutcome;
  reason?: string;
  certificateId?: string;
};

export type BulkSummary = {
  taskId?: string;
  taskStatus?: string;
  total: number;
  counts: Record<BulkOutcome, number>;
  devices: BulkDeviceResult[];
  /** Milliseconds spent in each phase. */
  timings: { prepareMs: number; uploadMs: number; taskMs: number; commitMs: number };
};

export type BulkDeps = {
  registry: Registry;
  iot: ClaimDeps["iot"] & Pick<IotProvisioning, "describeCertificate">;
  iotClient: IoTClient;
  s3: S3Client;
  /** Reads a report link (a presigned URL); default: fetch. */
  download?: (url: string) => Promise<string>;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
};

export type BulkOptions = {
  bucket: string;
  roleArn: string;
  templateBody: string;
  outDir: string;
  /** Devices missing from the registry are imported under this product; without it they fail. */
  productKey?: string;
  /** How long the claims block other flows (they must outlast the task); default 60 minutes. */
  claimTtlMs?: number;
  /** Describe polling interval; default 1 s. */
  pollMs?: number;
  /** Parallel registry / IoT calls while claiming and committing; default 16. */
  concurrency?: number;
  onProgress?: (phase: "claim" | "task" | "commit", done: number, total: number) => void;
};

/** Kept in `{outDir}/.onramp-bulk.json` while a run is unfinished, so a re-run resumes it. */
type Journal = {
  runId: string;
  inputKey: string;
  taskId?: string;
  claims: Record<string, { claimId: string; fingerprint: string }>;
  /** Devices settled before the task (skipped, failed), reported again on resume. */
  early: BulkDeviceResult[];
};

const OUTCOMES: BulkOutcome[] = [
  "provisioned",
  "already-provisioned",
  "certificate-restored",
  "skipped-disabled",
  "skipped-revoked",
  "skipped-in-progress",
  "failed",
];
const TERMINAL = new Set(["Completed", "Failed", "Cancelled"]);

/**
 * Bulk provisioning with AWS IoT's registration task, under the claim/commit protocol every flow
 * follows (ARCHITECTURE.md "Claim and commit"):
 * 1. claim each device (conditional write; registered or provisioned-with-this-key only, no live
 *    claim): a device another flow is provisioning, or that an operator disabled or revoked, is
 *    left out of the task, so the task never touches it;
 * 2. work: one parameter line per claimed device (`SerialNumber`, `ProductKey`, `CSR`) uploaded to
 *    S3, StartThingRegistrationTask, its certificates INACTIVE (templates/bulk/bulk-device.json);
 * 3. commit each result (conditional on the claim: an operator's disable/revoke meanwhile cancels
 *    it): a lost commit destroys the certificate the task made; errors release their claims;
 * 4. activate, record the activation, re-read (the operator's change wins), write `{serial}.crt`.
 * The claims and the task id are written to `{outDir}/.onramp-bulk.json` before the task starts,
 * so a run interrupted at any point is resumed by running the command again; devices already
 * provisioned with the same key are skipped (their missing `.crt` is restored from AWS IoT).
 */
export async function bulkProvision(
  deps: BulkDeps,
  devices: BulkDevice[],
  options: BulkOptions,
): Promise<BulkSummary> {
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const download =
    deps.download ??
    (async (url: string) => {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`report download failed: HTTP ${response.status}`);
      return response.text();
    });
  const concurrency = options.concurrency ?? 16;
  const claimDeps: ClaimDeps = { registry: deps.registry, iot: deps.iot };
  mkdirSync(options.outDir, { recursive: true });
  const journalFile = join(options.outDir, ".onramp-bulk.json");
  const timings = { prepareMs: 0, uploadMs: 0, taskMs: 0, commitMs: 0 };
  const bySerial = new Map(devices.map((d) => [d.serialNumber, d]));

  let journal = readJournal(journalFile);
  let t0 = now();
  if (!journal?.taskId) {
    // A journal without a task id: the previous run stopped before starting its task; its claims
    // are still this run's to use, so release them and claim afresh.
    if (journal) {
      for (const [serial, claim] of Object.entries(journal.claims)) {
        await deps.registry.releaseClaim(serial, claim.claimId);
      }
    }
    const runId = new Date(now()).toISOString().replace(/[:.]/g, "-");
    journal = { runId, inputKey: `params/${runId}.jsonl`, claims: {}, early: [] };
    const fresh: Journal = journal;
    let done = 0;
    await pool(devices, concurrency, async (device) => {
      const early = await claimOne(claimDeps, deps, device, options, now);
      if ("claimId" in early) fresh.claims[device.serialNumber] = early;
      else fresh.early.push(early);
      options.onProgress?.("claim", ++done, devices.length);
    });
    writeJournal(journalFile, fresh);
    timings.prepareMs = now() - t0;

    t0 = now();
    const lines = Object.keys(fresh.claims)
      .sort()
      .map((serial) => {
        const device = bySerial.get(serial);
        if (!device) throw new Error(`internal: no input for ${serial}`);
        return JSON.stringify({
          ...device.parameters,
          SerialNumber: serial,
          ProductKey: device.parameters?.ProductKey ?? "",
          CSR: device.csrPem,
        });
      });
    if (lines.length === 0) {
      rmSync(journalFile, { force: true });
      return summarize(undefined, undefined, devices.length, fresh.early, timings);
    }
    await deps.s3.send(
      new PutObjectCommand({
        Bucket: options.bucket,
        Key: fresh.inputKey,
        Body: `${lines.join("\n")}\n`,
        ContentType: "application/x-ndjson",
      }),
    );
    const started = await deps.iotClient.send(
      new StartThingRegistrationTaskCommand({
        templateBody: options.templateBody,
        inputFileBucket: options.bucket,
        inputFileKey: fresh.inputKey,
        roleArn: options.roleArn,
      }),
    );
    if (!started.taskId) throw new Error("StartThingRegistrationTask answered without a taskId");
    fresh.taskId = started.taskId;
    writeJournal(journalFile, fresh);
    timings.uploadMs = now() - t0;
  }
  const run: Journal & { taskId: string } = journal as Journal & { taskId: string };

  // Wait for the task.
  t0 = now();
  const claimed = Object.keys(run.claims).length;
  let status = "";
  for (;;) {
    const task = await deps.iotClient.send(new DescribeThingRegistrationTaskCommand({ taskId: run.taskId }));
    status = task.status ?? "";
    options.onProgress?.("task", (task.successCount ?? 0) + (task.failureCount ?? 0), claimed);
    if (TERMINAL.has(status)) break;
    await sleep(options.pollMs ?? 1000);
  }
  timings.taskMs = now() - t0;

  // Reports.
  t0 = now();
  const results = new Map<string, { certificatePem: string; certificateId: string; thingName: string }>();
  const errors = new Map<string, string>();
  const serialsByLine = Object.keys(run.claims).sort();
  // AWS IoT's certificates do not keep the CSR's subject (CN=AWS IoT Certificate): a result is
  // matched to its device by the public key, the CSR's.
  const serialsByKey = new Map(Object.entries(run.claims).map(([serial, c]) => [c.fingerprint, serial]));
  for (const reportType of ["RESULTS", "ERRORS"] as const) {
    let nextToken: string | undefined;
    do {
      const page = await deps.iotClient.send(
        new ListThingRegistrationTaskReportsCommand({ taskId: run.taskId, reportType, nextToken }),
      );
      for (const link of page.resourceLinks ?? []) {
        for (const line of (await download(link)).split("\n")) {
          if (line.trim() === "") continue;
          const row = JSON.parse(line) as ReportRow;
          if (reportType === "RESULTS") {
            const parsed = resultOf(row);
            const serial = parsed && serialsByKey.get(parsed.fingerprint);
            if (parsed && serial) results.set(serial, parsed);
          } else {
            const serial = typeof row.lineNumber === "number" ? serialsByLine[row.lineNumber] : undefined;
            if (serial) errors.set(serial, `${row.errorCode ?? "Error"}: ${row.errorMessage ?? "failed"}`);
          }
        }
      }
      nextToken = page.nextToken;
    } while (nextToken);
  }

  // Commit.
  const settled: BulkDeviceResult[] = [];
  let done = 0;
  await pool(Object.entries(run.claims), concurrency, async ([serial, claim]) => {
    const result = results.get(serial);
    settled.push(
      result
        ? await commitOne(claimDeps, serial, claim, result, options.outDir, now)
        : await releaseOne(
            deps.registry,
            serial,
            claim.claimId,
            errors.get(serial) ?? `no result in the task's reports (task ${status})`,
          ),
    );
    options.onProgress?.("commit", ++done, claimed);
  });
  timings.commitMs = now() - t0;
  const all = [...run.early, ...settled];
  await deps.s3
    .send(
      new PutObjectCommand({
        Bucket: options.bucket,
        Key: `reports/${run.taskId}.json`,
        Body: JSON.stringify({ taskId: run.taskId, status, devices: all }),
        ContentType: "application/json",
      }),
    )
    .catch(() => undefined); // the summary copy is a convenience; the run's outcome is local
  rmSync(journalFile, { force: true });
  return summarize(run.taskId, status, Math.max(devices.length, all.length), all, timings);
}

type ReportRow = {
  lineNumber?: number;
  errorCode?: string;
  errorMessage?: string;
  response?: {
    CertificatePem?: string;
    certificatePem?: string;
    ResourceArns?: Record<string, string>;
    resourceArns?: Record<string, string>;
  };
};

/** A result row: the certificate, its id and thing (from ResourceArns) and its key's fingerprint. */
function resultOf(row: ReportRow) {
  const pem = row.response?.CertificatePem ?? row.response?.certificatePem;
  const arns = row.response?.ResourceArns ?? row.response?.resourceArns ?? {};
  if (!pem) return undefined;
  const fingerprint = readCertificate(pem).publicKeyFingerprint;
  const certificateId = arns.certificate?.split("/").pop();
  const thingName = arns.thing?.split("/").pop();
  if (!certificateId || !thingName) return undefined;
  return { fingerprint, certificatePem: pem, certificateId, thingName };
}

async function claimOne(
  claimDeps: ClaimDeps,
  deps: BulkDeps,
  device: BulkDevice,
  options: BulkOptions,
  now: () => number,
): Promise<{ claimId: string; fingerprint: string } | BulkDeviceResult> {
  const serialNumber = device.serialNumber;
  const fail = (reason: string): BulkDeviceResult => ({ serialNumber, outcome: "failed", reason });
  let fingerprint: string;
  try {
    const csr = await parseCsr(device.csrPem);
    if (csr.subject.commonName !== serialNumber) {
      return fail(`the CSR's CN (${csr.subject.commonName ?? "none"}) is not the serial number`);
    }
    fingerprint = csr.publicKeyFingerprint;
  } catch (error) {
    return fail(`invalid CSR: ${error instanceof Error ? error.message : String(error)}`);
  }
  let current: Device | undefined = await deps.registry.getDevice(serialNumber);
  if (!current && options.productKey) {
    await deps.registry.importDevices([{ serialNumber, productKey: options.productKey }]);
    current = await deps.registry.getDevice(serialNumber);
  }
  if (!current) return fail("not in the registry (import it, or pass --product-key)");
  if (options.productKey && current.productKey !== options.productKey) {
    return fail(`belongs to product ${current.productKey}, not ${options.productKey}`);
  }
  if (current.status === "disabled") return { serialNumber, outcome: "skipped-disabled" };
  if (current.status === "revoked") return { serialNumber, outcome: "skipped-revoked" };
  if (current.status === "provisioned") {
    // Done before (by bulk or another flow). Same key: restore a missing .crt; another key: a
    // different provisioning the bulk run must not replace.
    if (current.publicKeyFingerprint !== fingerprint || !current.certificateId) {
      return { serialNumber, outcome: "already-provisioned", reason: "provisioned with another key" };
    }
    const file = join(options.outDir, `${serialNumber}.crt`);
    if (existsSync(file)) return { serialNumber, outcome: "already-provisioned" };
    const certificate = await deps.iot.describeCertificate(current.certificateId);
    if (!certificate) return fail("provisioned, but its certificate is not in AWS IoT");
    writeCertificate(file, certificate.certificatePem);
    return { serialNumber, outcome: "certificate-restored", certificateId: current.certificateId };
  }
  device.parameters = { ...device.parameters, ProductKey: current.productKey };
  try {
    const claim = await takeClaim(claimDeps, current, {
      flow: "bulk",
      publicKeyFingerprint: fingerprint,
      ttlMs: options.claimTtlMs ?? 60 * 60 * 1000,
      now: now(),
    });
    return { claimId: claim.id, fingerprint };
  } catch (error) {
    if (error instanceof ConflictError && error.code === "PROVISIONING_IN_PROGRESS") {
      return {
        serialNumber,
        outcome: "skipped-in-progress",
        reason: "another flow holds the device's claim",
      };
    }
    throw error;
  }
}

async function commitOne(
  deps: ClaimDeps,
  serialNumber: string,
  claim: { claimId: string; fingerprint: string },
  result: { certificatePem: string; certificateId: string; thingName: string },
  outDir: string,
  now: () => number,
): Promise<BulkDeviceResult> {
  const { certificateId } = result;
  if (readCertificate(result.certificatePem).publicKeyFingerprint !== claim.fingerprint) {
    await deps.iot.destroyCertificate(certificateId);
    await deps.registry.releaseClaim(serialNumber, claim.claimId);
    return { serialNumber, outcome: "failed", reason: "the certificate's key is not the CSR's" };
  }
  // Recorded first: a crash before the commit leaves a stale claim naming it, which the next
  // flow settles (destroys) like any uncommitted certificate.
  await deps.registry.recordClaimCertificate(serialNumber, claim.claimId, certificateId);
  const committed = await deps.registry.completeClaim(serialNumber, claim.claimId, {
    certificateId,
    thingName: result.thingName,
    publicKeyFingerprint: claim.fingerprint,
    at: new Date(now()).toISOString(),
  });
  if (!committed) {
    // An operator disabled/revoked the device meanwhile, or its claim expired and another flow
    // took it: this run's certificate must not stay.
    await deps.iot.destroyCertificate(certificateId);
    const after = await deps.registry.getDevice(serialNumber);
    const outcome: BulkOutcome =
      after?.status === "disabled"
        ? "skipped-disabled"
        : after?.status === "revoked"
          ? "skipped-revoked"
          : "failed";
    return { serialNumber, outcome, reason: "the claim was cancelled or replaced before the commit" };
  }
  const activation = await activateCommitted(deps, serialNumber, certificateId);
  if (activation !== "active") {
    return {
      serialNumber,
      outcome: activation === "revoked" ? "skipped-revoked" : "skipped-disabled",
      certificateId,
    };
  }
  writeCertificate(join(outDir, `${serialNumber}.crt`), result.certificatePem);
  return { serialNumber, outcome: "provisioned", certificateId };
}

async function releaseOne(
  registry: Registry,
  serialNumber: string,
  claimId: string,
  reason: string,
): Promise<BulkDeviceResult> {
  await registry.releaseClaim(serialNumber, claimId);
  return { serialNumber, outcome: "failed", reason };
}

function summarize(
  taskId: string | undefined,
  taskStatus: string | undefined,
  total: number,
  devices: BulkDeviceResult[],
  timings: BulkSummary["timings"],
): BulkSummary {
  const counts = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<BulkOutcome, number>;
  for (const d of devices) counts[d.outcome] += 1;
  devices.sort((a, b) => (a.serialNumber < b.serialNumber ? -1 : a.serialNumber > b.serialNumber ? 1 : 0));
  return {
    ...(taskId ? { taskId } : {}),
    ...(taskStatus ? { taskStatus } : {}),
    total,
    counts,
    devices,
    timings,
  };
}

function writeCertificate(file: string, pem: string): void {
  const temporary = `${file}.tmp`;
  writeFileSync(temporary, pem.endsWith("\n") ? pem : `${pem}\n`, { mode: 0o644 });
  renameSync(temporary, file);
}

function readJournal(file: string): Journal | undefined {
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, "utf8")) as Journal;
}

function writeJournal(file: string, journal: Journal): void {
  const temporary = `${file}.tmp`;
  writeFileSync(temporary, JSON.stringify(journal), { mode: 0o600 });
  renameSync(temporary, file);
}

async function pool<T>(items: T[], size: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(size, items.length) }, worker));
}
