import { randomBytes } from "node:crypto";
import { ConflictError, ValidationError } from "../errors.ts";
import {
  KEY_ID_PATTERN,
  openSecret,
  type RegistryKeys,
  SealedSecretError,
  sealedKeyId,
  sealSecret,
} from "./sealed-secret.ts";

/**
 * The registry keys with the rotation state: a key added but not yet current, and since when
 * (epoch ms) the current key is current (absent for the first key).
 */
export type RegistryKeyRing = RegistryKeys & { pendingKeyId?: string; currentSince?: number };

/** Where the registry keys live, as the rotation changes them (SecretStore only reads them). */
export interface RegistryKeyStore {
  getRegistryKeys(options?: { fresh?: boolean }): Promise<RegistryKeyRing>;
  /** Adds a new random key as the pending key; ConflictError when another key is pending. */
  addPendingRegistryKey(keyId: string): Promise<RegistryKeyRing>;
  /** Makes the pending key `keyId` current (new seals use it from then on). */
  promotePendingRegistryKey(keyId: string): Promise<RegistryKeyRing>;
  /** Forgets keys that are neither current nor pending. */
  removeRegistryKeys(keyIds: string[]): Promise<RegistryKeyRing>;
}

/** A device row's sealed secret. */
export type SealedSecretRow = { serialNumber: string; sealedSecret: string };

/** The registry rows that hold a sealed secret, as the rotation reads and rewrites them. */
export interface SealedSecretRows {
  /** Every device with a sealed secret, page by page (consistent reads). */
  listSealedSecrets(): AsyncIterable<SealedSecretRow[]>;
  /**
   * Sets the sealed secret of a device only if it still is `expected`; false (nothing written)
   * when the row changed meanwhile or is gone.
   */
  replaceSealedSecret(serialNumber: string, expected: string, next: string): Promise<boolean>;
}

export type RotationOptions = {
  /** The new key's id; generated when absent (or the unfinished rotation's, see rotateRegistryKey). */
  keyId?: string;
  /** Count what would be done, change nothing. */
  dryRun?: boolean;
  /**
   * Old keys are removed only once the current key has been current this long (default 10
   * minutes): a writer that read the keys before (an import in flight) may still seal under the
   * old key; the next run re-seals those rows and then removes it.
   */
  retireAfterMs?: number;
  /** Rows looked at so far (for a progress bar). */
  onProgress?: (rowsSeen: number) => void;
};

export type RotationReport = {
  /** The key every row is (or, in a dry run, would be) sealed under. */
  keyId: string;
  /** A new key was (or would be) created; false when an unfinished rotation was resumed or it was done. */
  created: boolean;
  dryRun: boolean;
  /** Rows re-sealed under keyId (dry run: rows that would be). */
  resealed: number;
  /** Rows already under keyId. */
  alreadyCurrent: number;
  /** Conditional writes that lost to a concurrent change; those rows were read again and re-sealed. */
  concurrentChanges: number;
  /** Rows that cannot be opened (tampered, unknown key): left as they are; their keys are kept. */
  unreadable: { serialNumber: string; reason: string }[];
  /** Old keys removed because no row uses them any more. */
  retiredKeyIds: string[];
  /** Old keys kept: a row still uses them, or the current key is too new (or it is a dry run). */
  keptKeyIds: string[];
  /** When old keys are kept only because the current key is too new: run again after this. */
  retireNotBefore?: string;
};

/** Sweeps after the key became current: each catches rows written under the old key meanwhile. */
const MAX_SWEEPS = 5;
const DEFAULT_RETIRE_AFTER_MS = 10 * 60_000;

/**
 * Rotates the registry key. Steps, each safe to repeat:
 *  1. a new key (new key id) is added to the keys as *pending*: readable, not yet used for sealing;
 *  2. every sealed secret not under it is opened and re-sealed under it, with a conditional write
 *     per row (`sealedSecret` unchanged since read), so a concurrent change is never overwritten:
 *     a lost write re-reads the row on the next pass;
 *  3. the pending key becomes current;
 *  4. sweeps re-seal rows written under the old key while this ran, until one finds none;
 *  5. old keys no row uses are removed, once the new key has been current for `retireAfterMs`
 *     (writers that cached the keys may still seal under the old one until then; a later run
 *     re-seals their rows and removes it); a key a row still uses (an unreadable row) stays.
 *
 * Which rotation runs: an unfinished one always finishes first (a pending key, or old keys still
 * kept beside the current one), so re-running after an interruption completes the job. Otherwise
 * a new key is created, with `keyId` or a generated id; `keyId` naming the current key with
 * nothing left to do makes the run a no-op. Run one rotation at a time: the keys are read,
 * changed and written back whole.
 */
export async function rotateRegistryKey(
  deps: { keyStore: RegistryKeyStore; rows: SealedSecretRows; clock?: () => number },
  options: RotationOptions = {},
): Promise<RotationReport> {
  if (options.keyId !== undefined && !KEY_ID_PATTERN.test(options.keyId)) {
    throw new ValidationError("The key id must be 1-64 characters of A-Z, a-z, 0-9, _ and -.");
  }
  let ring = await deps.keyStore.getRegistryKeys({ fresh: true });
  const clock = deps.clock ?? Date.now;
  const target = chooseTarget(ring, options.keyId, clock);
  const report: RotationReport = {
    keyId: target.keyId,
    created: target.create,
    dryRun: options.dryRun === true,
    resealed: 0,
    alreadyCurrent: 0,
    concurrentChanges: 0,
    unreadable: [],
    retiredKeyIds: [],
    keptKeyIds: [],
  };
  let seen = 0;
  const progress = () => options.onProgress?.(++seen);

  if (options.dryRun) {
    for await (const page of deps.rows.listSealedSecrets()) {
      for (const row of page) {
        progress();
        const keyId = keyIdOf(row.sealedSecret);
        if (keyId === target.keyId) report.alreadyCurrent++;
        else if (keyId !== undefined && ring.keys.has(keyId)) report.resealed++;
        else report.unreadable.push({ serialNumber: row.serialNumber, reason: unreadableReason(keyId) });
      }
    }
    report.keptKeyIds = [...ring.keys.keys()].filter((id) => id !== target.keyId);
    return report;
  }

  if (target.create) ring = await deps.keyStore.addPendingRegistryKey(target.keyId);

  // 2. Re-seal under the pending (or, when resuming, already current) key.
  let pass = await resealAll(deps, ring, target.keyId, report, progress);
  report.alreadyCurrent = pass.alreadyCurrent;

  // 3. The key becomes current.
  if (ring.currentKeyId !== target.keyId) ring = await deps.keyStore.promotePendingRegistryKey(target.keyId);

  // 4. Sweep until a pass finds nothing left to re-seal (writers with the old keys cached).
  for (let sweep = 0; sweep < MAX_SWEEPS && (pass.stale > 0 || pass.lost > 0 || sweep === 0); sweep++) {
    report.unreadable = [];
    pass = await resealAll(deps, ring, target.keyId, report, progress);
  }

  // 5. Retire the old keys no row uses, once writers that cached the old keys are done.
  const old = [...ring.keys.keys()].filter((id) => id !== target.keyId);
  const retireAt = (ring.currentSince ?? 0) + (options.retireAfterMs ?? DEFAULT_RETIRE_AFTER_MS);
  if (old.length > 0 && clock() < retireAt) {
    report.keptKeyIds = old;
    report.retireNotBefore = new Date(retireAt).toISOString();
    return report;
  }
  report.retiredKeyIds = old.filter((id) => !pass.keyIdsInUse.has(id));
  report.keptKeyIds = old.filter((id) => pass.keyIdsInUse.has(id));
  if (report.retiredKeyIds.length > 0) await deps.keyStore.removeRegistryKeys(report.retiredKeyIds);
  return report;
}

/** Which key this run rotates to, and whether it must be created. */
function chooseTarget(
  ring: RegistryKeyRing,
  keyId: string | undefined,
  clock: () => number,
): { keyId: string; create: boolean } {
  if (ring.pendingKeyId !== undefined) {
    if (keyId !== undefined && keyId !== ring.pendingKeyId) {
      throw new ConflictError(
        "ROTATION_UNFINISHED",
        `A rotation to key ${ring.pendingKeyId} is unfinished; run rotate-key again without --key-id (or with --key-id ${ring.pendingKeyId}) to finish it first.`,
      );
    }
    return { keyId: ring.pendingKeyId, create: false };
  }
  if (keyId !== undefined) {
    if (keyId === ring.currentKeyId) return { keyId, create: false };
    if (ring.keys.has(keyId)) {
      throw new ConflictError(
        "KEY_ID_EXISTS",
        `Key id ${keyId} exists already (an old key); choose another.`,
      );
    }
    return { keyId, create: true };
  }
  if (ring.keys.size > 1) return { keyId: ring.currentKeyId, create: false };
  return { keyId: newKeyId(clock()), create: true };
}

/** `rk-20260501-a1b2c3`: sortable by creation day, unique by its random part. */
function newKeyId(now: number): string {
  const day = new Date(now).toISOString().slice(0, 10).replaceAll("-", "");
  return `rk-${day}-${randomBytes(4).toString("hex")}`;
}

type Pass = { alreadyCurrent: number; stale: number; lost: number; keyIdsInUse: Set<string> };

/** One pass over every sealed secret: re-seals those not under keyId, conditionally. */
async function resealAll(
  deps: { keyStore: RegistryKeyStore; rows: SealedSecretRows },
  ring: RegistryKeyRing,
  keyId: string,
  report: RotationReport,
  progress: () => void,
): Promise<Pass> {
  const pass: Pass = { alreadyCurrent: 0, stale: 0, lost: 0, keyIdsInUse: new Set() };
  let keys: RegistryKeys = ring;
  for await (const page of deps.rows.listSealedSecrets()) {
    for (const row of page) {
      progress();
      const rowKeyId = keyIdOf(row.sealedSecret);
      if (rowKeyId === keyId) {
        pass.alreadyCurrent++;
        continue;
      }
      if (rowKeyId !== undefined && !keys.keys.has(rowKeyId)) {
        keys = await deps.keyStore.getRegistryKeys({ fresh: true });
      }
      let resealed: string;
      try {
        const secret = openSecret(row.sealedSecret, keys, row.serialNumber);
        resealed = sealSecret(secret, keys, row.serialNumber, keyId);
      } catch (error) {
        if (!(error instanceof SealedSecretError)) throw error;
        if (rowKeyId !== undefined) pass.keyIdsInUse.add(rowKeyId);
        report.unreadable.push({ serialNumber: row.serialNumber, reason: error.message });
        continue;
      }
      pass.stale++;
      if (await deps.rows.replaceSealedSecret(row.serialNumber, row.sealedSecret, resealed)) {
        report.resealed++;
      } else {
        // Changed since it was read: the next pass reads it again. Its key stays until then.
        pass.lost++;
        report.concurrentChanges++;
        if (rowKeyId !== undefined) pass.keyIdsInUse.add(rowKeyId);
      }
    }
  }
  return pass;
}

function keyIdOf(sealed: string): string | undefined {
  try {
    return sealedKeyId(sealed);
  } catch {
    return undefined;
  }
}

function unreadableReason(keyId: string | undefined): string {
  return keyId === undefined ? "The sealed secret is malformed." : `No registry key with id ${keyId}.`;
}
