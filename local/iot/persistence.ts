import { closeSync, existsSync, fsyncSync, openSync, readdirSync, readFileSync } from "node:fs";
import { type FileHandle, mkdir, open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import * as z from "zod";
import type { IotChange, IotSnapshot } from "./iot-state.ts";

/**
 * The emulator's state on disk, crash-consistent: an acknowledged write survives `kill -9` (and a
 * power cut). Two kinds of files in the state folder:
 *
 * - `iot-state.json`: a snapshot of the whole registry; `journal` names the first journal file
 *   that is not yet part of it. Replaced atomically (temporary file, fsync, rename, fsync of the
 *   folder).
 * - `iot-journal.<n>.jsonl`: one line per write (the steps of one IotState mutation), appended
 *   and fsync'd before the HTTP answer. Concurrent requests share one fsync (group commit).
 *
 * Recovery reads the snapshot, replays the journals from its `journal` number on, then writes a
 * new snapshot and starts a new journal (compaction). While running, the journal is compacted into
 * a new snapshot once it outgrows the last snapshot (at least `minCompactBytes`), so a large
 * registry is rewritten rarely and the journal stays a bounded multiple of the state.
 */
export const SNAPSHOT_FILE = "iot-state.json";
const JOURNAL_FILE = /^iot-journal\.(\d+)\.jsonl$/;
const journalFile = (generation: number) => `iot-journal.${generation}.jsonl`;

/** Loose shape check of `iot-state.json`: enough to refuse a foreign or truncated file. */
const snapshotSchema = z.looseObject({
  version: z.literal(1),
  registrationCode: z.string().min(1),
  certificates: z.array(z.looseObject({ certificateId: z.string(), certificatePem: z.string() })),
  caCertificates: z.array(z.looseObject({ certificateId: z.string(), certificatePem: z.string() })),
  things: z.array(z.looseObject({ thingName: z.string() })),
  policies: z.array(z.looseObject({ policyName: z.string() })),
  provisioningTemplates: z.array(z.looseObject({ templateName: z.string() })),
  thingPrincipals: z.record(z.string(), z.array(z.string())),
  policyTargets: z.record(z.string(), z.array(z.string())),
  /** The first journal generation not contained in this snapshot (absent in older files: 0). */
  journal: z.number().int().nonnegative().optional(),
});

/** One journal line: the steps of one write. */
const journalLineSchema = z.array(z.looseObject({ op: z.string() }));

/**
 * Reads a saved snapshot; undefined when the file does not exist. Throws with the path in the
 * message when it exists but is not a state file (better than silently starting empty).
 */
export function loadSnapshot(path: string): (IotSnapshot & { journal?: number }) | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return snapshotSchema.parse(JSON.parse(readFileSync(path, "utf8"))) as unknown as IotSnapshot & {
      journal?: number;
    };
  } catch (error) {
    throw new Error(`${path} is not a readable IoT emulator state file; move it away to start empty.`, {
      cause: error,
    });
  }
}

/** What a state folder holds: the snapshot and the writes journaled after it, in order. */
export type RecoveredState = {
  snapshot: IotSnapshot | undefined;
  /** One entry per journaled write, oldest first. */
  writes: IotChange[][];
  /** The highest journal generation found (or the snapshot's), so the next one is fresh. */
  generation: number;
};

/**
 * Reads the snapshot and the journals not yet in it. A torn last line (a crash in the middle of an
 * append, never acknowledged) is dropped; a broken line before it is an error.
 */
export function recoverState(dir: string): RecoveredState {
  const snapshot = loadSnapshot(join(dir, SNAPSHOT_FILE));
  const from = snapshot?.journal ?? 0;
  const generations = existsSync(dir)
    ? readdirSync(dir)
        .map((name) => JOURNAL_FILE.exec(name)?.[1])
        .filter((n): n is string => n !== undefined)
        .map(Number)
        .sort((a, b) => a - b)
    : [];
  const writes: IotChange[][] = [];
  for (const generation of generations.filter((g) => g >= from)) {
    const path = join(dir, journalFile(generation));
    const lines = readFileSync(path, "utf8").split("\n");
    for (const [index, line] of lines.entries()) {
      if (line === "") continue;
      try {
        writes.push(journalLineSchema.parse(JSON.parse(line)) as IotChange[]);
      } catch (error) {
        const torn = index === lines.length - 1; // no newline after it: the append did not finish
        if (torn) break;
        throw new Error(`${path} line ${index + 1} is not a journal entry; move the file away to drop it.`, {
          cause: error,
        });
      }
    }
  }
  if (snapshot) delete (snapshot as { journal?: number }).journal;
  return { snapshot, writes, generation: Math.max(from, ...generations) };
}

/** Writes a file so that after a crash it holds either its old or its new content, never a mix. */
async function replaceDurably(path: string, text: string): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    const handle = await open(temporary, "w", 0o600);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw error;
  }
  syncFolder(join(path, ".."));
}

/** Makes a rename or a new file in the folder durable. */
function syncFolder(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

type Waiter = { upTo: number; resolve: () => void; reject: (error: unknown) => void };

/**
 * The journal of a running emulator. `append` records a write (serialized at once); `durable`
 * resolves once every write appended so far is on disk. One worker writes: it takes all pending
 * lines, appends them with one write and one fdatasync, then answers every request they cover.
 */
export class IotJournal {
  private pending: string[] = [];
  private appended = 0;
  private persisted = 0;
  private waiters: Waiter[] = [];
  private worker: Promise<void> | undefined;
  private journalBytes = 0;
  private compactAt: number;

  private constructor(
    private readonly dir: string,
    private readonly read: () => IotSnapshot,
    private handle: FileHandle,
    private generation: number,
    snapshotBytes: number,
    private readonly minCompactBytes: number,
  ) {
    this.compactAt = Math.max(minCompactBytes, snapshotBytes);
  }

  /**
   * Compacts what `recoverState` found (the state `read` returns now) into a new snapshot, drops
   * the old journals and opens a new one.
   */
  static async open(
    dir: string,
    read: () => IotSnapshot,
    recoveredGeneration: number,
    options: { minCompactBytes?: number } = {},
  ): Promise<IotJournal> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const generation = recoveredGeneration + 1;
    const snapshotBytes = await writeSnapshot(dir, read(), generation);
    await dropJournalsBefore(dir, generation);
    const handle = await open(join(dir, journalFile(generation)), "a", 0o600);
    syncFolder(dir);
    return new IotJournal(
      dir,
      read,
      handle,
      generation,
      snapshotBytes,
      options.minCompactBytes ?? 4 * 1024 * 1024,
    );
  }

  /**
   * Records one write; call it synchronously after the in-memory change (put steps are live). It
   * goes to disk soon even if nobody waits (in-process writes of the MQTT endpoint); the worker
   * starts after the current synchronous work, so one operation's writes share one append.
   */
  append(changes: IotChange[]): void {
    this.pending.push(`${JSON.stringify(changes)}\n`);
    this.appended += 1;
    if (this.pending.length === 1) queueMicrotask(() => this.startWorker());
  }

  /** Resolves when every write appended so far is on disk; rejects when it could not be written. */
  durable(): Promise<void> {
    if (this.persisted >= this.appended) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ upTo: this.appended, resolve, reject });
      this.startWorker();
    });
  }

  private startWorker(): void {
    if (this.worker || this.pending.length === 0) return;
    this.worker = this.work()
      .then((written) => {
        this.worker = undefined;
        if (written && this.pending.length > 0) this.startWorker(); // arrived as the loop ended
      })
      .catch(() => undefined);
  }

  /** Writes what is pending and closes the journal file. */
  async close(): Promise<void> {
    await this.durable().catch(() => undefined);
    await this.worker;
    await this.handle.close();
  }

  /** Writes until nothing is pending; false when a write failed (the next append or wait retries). */
  private async work(): Promise<boolean> {
    while (this.pending.length > 0) {
      const upTo = this.appended;
      const lines = this.pending;
      this.pending = [];
      try {
        if (this.journalBytes >= this.compactAt) await this.compact();
        else await this.write(lines.join(""));
        this.persisted = upTo;
      } catch (error) {
        // Not on disk: keep the lines for the next attempt; refuse the requests they cover.
        this.pending = [...lines, ...this.pending];
        for (const waiter of this.waiters.splice(0)) waiter.reject(error);
        return false;
      }
      const [done, waiting] = partition(this.waiters, (w) => w.upTo <= this.persisted);
      this.waiters = waiting;
      for (const waiter of done) waiter.resolve();
    }
    return true;
  }

  private async write(text: string): Promise<void> {
    try {
      await this.handle.write(text);
      await this.handle.datasync();
      this.journalBytes += Buffer.byteLength(text);
    } catch (error) {
      // Cut a partial append off, so the next attempt does not leave a broken line mid-file.
      await this.handle.truncate(this.journalBytes).catch(() => undefined);
      throw error;
    }
  }

  /** The snapshot now holds every write appended so far (pending ones included): start afresh. */
  private async compact(): Promise<void> {
    const generation = this.generation + 1;
    const state = this.read(); // now, before any await: it holds every write appended so far
    // The next journal exists before the snapshot names it; if the snapshot fails, it stays empty.
    const next = await open(join(this.dir, journalFile(generation)), "a", 0o600);
    let snapshotBytes: number;
    try {
      snapshotBytes = await writeSnapshot(this.dir, state, generation);
    } catch (error) {
      await next.close().catch(() => undefined);
      throw error;
    }
    await this.handle.close().catch(() => undefined);
    this.handle = next;
    this.generation = generation;
    this.journalBytes = 0;
    this.compactAt = Math.max(this.minCompactBytes, snapshotBytes);
    await dropJournalsBefore(this.dir, generation);
  }
}

async function writeSnapshot(dir: string, snapshot: IotSnapshot, journal: number): Promise<number> {
  const text = `${JSON.stringify({ ...snapshot, journal })}\n`;
  await replaceDurably(join(dir, SNAPSHOT_FILE), text);
  return Buffer.byteLength(text);
}

async function dropJournalsBefore(dir: string, generation: number): Promise<void> {
  for (const name of readdirSync(dir)) {
    const found = JOURNAL_FILE.exec(name)?.[1];
    if (found !== undefined && Number(found) < generation) await rm(join(dir, name), { force: true });
  }
}

function partition<T>(items: T[], test: (item: T) => boolean): [T[], T[]] {
  const yes: T[] = [];
  const no: T[] = [];
  for (const item of items) (test(item) ? yes : no).push(item);
  return [yes, no];
}
