import { existsSync, readFileSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import * as z from "zod";
import type { IotSnapshot } from "./iot-state.ts";

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
});

/**
 * Reads a saved state; undefined when the file does not exist. Throws with the path in the
 * message when it exists but is not a state file (better than silently starting empty).
 */
export function loadSnapshot(path: string): IotSnapshot | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return snapshotSchema.parse(JSON.parse(readFileSync(path, "utf8"))) as unknown as IotSnapshot;
  } catch (error) {
    throw new Error(`${path} is not a readable IoT emulator state file; move it away to start empty.`, {
      cause: error,
    });
  }
}

/**
 * Saves the state to one JSON file: writes are coalesced (at most one per `debounceMs`, and
 * never more often than ten times the last write's duration, so a large registry under load
 * spends at most about a tenth of its time saving), atomic (temporary file in the same folder,
 * then rename) and private (0600).
 */
export class SnapshotWriter {
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private dirty = false;
  private sequence = 0;
  private lastWriteMs = 0;

  constructor(
    private readonly path: string,
    private readonly read: () => IotSnapshot,
    private readonly onError: (error: unknown) => void,
    private readonly debounceMs = 50,
  ) {}

  /** Marks the state changed; a write follows after the debounce delay. */
  changed(): void {
    this.dirty = true;
    if (this.timer || this.writing) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.startWriting();
      },
      Math.max(this.debounceMs, 10 * this.lastWriteMs),
    );
    this.timer.unref();
  }

  /** Writes pending changes now and waits until the file is on disk. */
  async flush(): Promise<void> {
    for (;;) {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      if (this.writing) {
        await this.writing;
        continue;
      }
      if (!this.dirty) return;
      this.startWriting();
    }
  }

  private startWriting(): void {
    this.writing = this.writeOnce().finally(() => {
      this.writing = undefined;
      if (this.dirty) this.changed();
    });
  }

  /** One write of the current state; changes made meanwhile schedule the next one. */
  private async writeOnce(): Promise<void> {
    this.dirty = false;
    const started = performance.now();
    const temporary = `${this.path}.${process.pid}.${++this.sequence}.tmp`;
    try {
      const text = `${JSON.stringify(this.read())}\n`;
      await mkdir(dirname(this.path), { recursive: true });
      await writeFile(temporary, text, { mode: 0o600 });
      await rename(temporary, this.path);
      this.lastWriteMs = performance.now() - started;
    } catch (error) {
      await rm(temporary, { force: true }).catch(() => undefined);
      this.onError(error);
    }
  }
}
