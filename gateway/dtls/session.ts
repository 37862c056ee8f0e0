/** An established DTLS session as the application sees it: data in, data out, close, idle timeout. */
import { EventEmitter } from "node:events";
import type { CipherSuiteName } from "./cipher-suites.ts";

export interface RemoteAddress {
  address: string;
  port: number;
}

/** What the session needs from its connection. */
export interface SessionLink {
  sendApplicationData(data: Buffer): void;
  close(reason: string): void;
}

export type SessionEvents = { data: [Buffer]; close: [string] };

/** Largest application payload per record (RFC 6347: 2^14). */
export const MAX_APPLICATION_DATA = 16384;

export class DtlsSession extends EventEmitter<SessionEvents> {
  private idleTimeoutMs: number;
  private lastActivity = Date.now();
  private idleTimer: NodeJS.Timeout | undefined;
  private closedReason: string | undefined;

  constructor(
    private readonly link: SessionLink,
    readonly remote: RemoteAddress,
    /** The PSK identity the peer authenticated with. */
    readonly identity: Buffer,
    readonly cipherSuite: CipherSuiteName,
    idleTimeoutMs: number,
  ) {
    super();
    this.idleTimeoutMs = idleTimeoutMs;
    this.armIdleTimer(idleTimeoutMs);
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  send(data: Buffer): void {
    if (this.closedReason !== undefined) throw new Error("DTLS session is closed");
    if (data.length === 0) throw new RangeError("an application record carries at least one byte");
    if (data.length > MAX_APPLICATION_DATA)
      throw new RangeError(`at most ${MAX_APPLICATION_DATA} bytes per record`);
    this.link.sendApplicationData(data);
  }

  /** Sends close_notify and ends the session. */
  close(): void {
    this.link.close("closed locally");
  }

  /** The session ends after this long without an authenticated record from the peer. */
  setIdleTimeout(ms: number): void {
    this.idleTimeoutMs = ms;
    this.armIdleTimer(Math.max(0, this.lastActivity + ms - Date.now()));
  }

  /** @internal an authenticated record arrived. */
  touch(): void {
    this.lastActivity = Date.now();
  }

  /** @internal */
  deliver(data: Buffer): void {
    this.emit("data", data);
  }

  /** @internal the connection ended. */
  ended(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    clearTimeout(this.idleTimer);
    this.emit("close", reason);
  }

  private armIdleTimer(ms: number): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      const idle = Date.now() - this.lastActivity;
      if (idle >= this.idleTimeoutMs) this.link.close("idle timeout");
      else this.armIdleTimer(this.idleTimeoutMs - idle);
    }, ms);
    this.idleTimer.unref();
  }
}
