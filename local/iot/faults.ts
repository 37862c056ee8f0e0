import * as z from "zod";
import { IotServiceError } from "./errors.ts";

/** Schema of a fault, as `faults.inject()` and `POST /_emulator/faults` take it. */
export const faultSpecSchema = z.strictObject({
  /** An operation name such as `RegisterThing`, or `*` for every operation. */
  operation: z.string().regex(/^(\*|[A-Z][A-Za-z]{1,63})$/, "an operation name such as RegisterThing, or *"),
  /** The AWS error name to answer with, e.g. `ThrottlingException`. */
  error: z.string().regex(/^[A-Z][A-Za-z]{1,63}$/, "an error name such as ThrottlingException"),
  /** How many calls fail (default 1). */
  times: z.number().int().min(1).max(1_000_000).default(1),
  /** HTTP status; default: the status of that error in the AWS IoT model. */
  status: z.number().int().min(400).max(599).optional(),
  message: z.string().max(1000).optional(),
});

/** A fault to inject. */
export type FaultSpec = z.input<typeof faultSpecSchema>;

type ArmedFault = z.output<typeof faultSpecSchema> & { remaining: number };

/**
 * Fault injection and call counting for tests: "fail the next RegisterThing with
 * ThrottlingException". Faults for an operation are used in the order they were injected.
 */
export class FaultInjector {
  private armed: ArmedFault[] = [];
  private readonly counts = new Map<string, number>();

  constructor(private readonly knownOperations: ReadonlySet<string>) {}

  /**
   * Makes the next `times` calls of `operation` fail with `error`. Throws IotServiceError
   * (InvalidRequestException) for an unknown operation or a malformed spec.
   */
  inject(spec: FaultSpec): void {
    const parsed = faultSpecSchema.safeParse(spec);
    if (!parsed.success) {
      throw new IotServiceError("InvalidRequestException", `Invalid fault: ${z.prettifyError(parsed.error)}`);
    }
    const fault = parsed.data;
    if (fault.operation !== "*" && !this.knownOperations.has(fault.operation)) {
      throw new IotServiceError(
        "InvalidRequestException",
        `Unknown operation ${fault.operation}; known: ${[...this.knownOperations].sort().join(", ")}`,
      );
    }
    this.armed.push({ ...fault, remaining: fault.times });
  }

  /** Removes every pending fault (or those of one operation). */
  clear(operation?: string): void {
    this.armed = operation === undefined ? [] : this.armed.filter((f) => f.operation !== operation);
  }

  /** Faults not used up yet. */
  pending(): Array<z.output<typeof faultSpecSchema> & { remaining: number }> {
    return this.armed.map((f) => ({ ...f }));
  }

  /** How many requests of an operation arrived (failed ones included) since start or resetCalls(). */
  calls(operation: string): number {
    return this.counts.get(operation) ?? 0;
  }

  /** Every operation's call count. */
  allCalls(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  /** Sets every call count back to zero. */
  resetCalls(): void {
    this.counts.clear();
  }

  private readonly holds: Array<{ operation: string; arrived: () => void; released: Promise<void> }> = [];

  /**
   * Holds the answer of the next call of `operation` after the operation has run (its writes are
   * done, its answer not sent): tests use it to land an operator's change between two steps of a
   * flow, deterministically. `reached` resolves when the call is being held; `release()` sends the
   * answer.
   */
  hold(operation: string): { reached: Promise<void>; release: () => void } {
    let arrived!: () => void;
    let release!: () => void;
    const reached = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.holds.push({ operation, arrived, released });
    return { reached, release };
  }

  /** Waits while a hold set by hold() applies to this call of `operation`. */
  async answerGate(operation: string): Promise<void> {
    const index = this.holds.findIndex((h) => h.operation === operation);
    if (index < 0) return;
    const [gate] = this.holds.splice(index, 1);
    gate!.arrived();
    await gate!.released;
  }

  /** Counts one call of `operation`; returns the error to answer with if a fault is armed. */
  take(operation: string): IotServiceError | undefined {
    this.counts.set(operation, (this.counts.get(operation) ?? 0) + 1);
    const fault = this.armed.find((f) => f.operation === operation || f.operation === "*");
    if (!fault) return undefined;
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.armed.splice(this.armed.indexOf(fault), 1);
    return new IotServiceError(
      fault.error,
      fault.message ?? `Injected fault: ${fault.error} for ${operation}.`,
      {},
      fault.status,
    );
  }
}
