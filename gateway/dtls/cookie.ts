/**
 * Stateless HelloVerifyRequest cookies (RFC 6347 §4.2.1): HMAC over the client's address and the
 * ClientHello fields that must not change between the two hellos, keyed by a secret that rotates;
 * a cookie is good for one to two rotation periods.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { ClientHello } from "./hello-messages.ts";

export const COOKIE_LENGTH = 32;

export class CookieJar {
  private current = randomBytes(32);
  private previous = randomBytes(32);
  private rotatedAt: number;

  constructor(
    private readonly rotateMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.rotatedAt = now();
  }

  private rotateIfDue(): void {
    if (this.now() - this.rotatedAt < this.rotateMs) return;
    this.previous = this.current;
    this.current = randomBytes(32);
    this.rotatedAt = this.now();
  }

  private compute(secret: Buffer, address: string, port: number, hello: ClientHello): Buffer {
    const h = createHmac("sha256", secret);
    h.update(`${address}|${port}|${hello.clientVersion}|`);
    h.update(hello.random);
    h.update(Buffer.of(hello.sessionId.length));
    h.update(hello.sessionId);
    for (const suite of hello.cipherSuites) h.update(Buffer.of(suite >> 8, suite & 0xff));
    return h.digest();
  }

  issue(address: string, port: number, hello: ClientHello): Buffer {
    this.rotateIfDue();
    return this.compute(this.current, address, port, hello);
  }

  verify(address: string, port: number, hello: ClientHello): boolean {
    this.rotateIfDue();
    if (hello.cookie.length !== COOKIE_LENGTH) return false;
    const a = timingSafeEqual(this.compute(this.current, address, port, hello), hello.cookie);
    const b = timingSafeEqual(this.compute(this.previous, address, port, hello), hello.cookie);
    return a || b;
  }
}
