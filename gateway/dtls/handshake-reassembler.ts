/** Reassembles fragmented handshake messages, bounded in message size and in messages held. */
import type { HandshakeFragment } from "./handshake-fragment.ts";

export interface HandshakeMessage {
  msgType: number;
  messageSeq: number;
  body: Buffer;
}

interface Partial {
  msgType: number;
  body: Buffer;
  have: Uint8Array;
  missing: number;
}

export class HandshakeReassembler {
  private readonly partials = new Map<number, Partial>();

  constructor(
    private readonly maxMessageLength: number,
    private readonly maxMessagesHeld: number,
  ) {}

  /** Adds a fragment; returns false when it is rejected (too large, inconsistent, too many held). */
  add(fragment: HandshakeFragment): boolean {
    if (fragment.length > this.maxMessageLength) return false;
    let partial = this.partials.get(fragment.messageSeq);
    if (!partial) {
      if (this.partials.size >= this.maxMessagesHeld) return false;
      partial = {
        msgType: fragment.msgType,
        body: Buffer.alloc(fragment.length),
        have: new Uint8Array(fragment.length),
        missing: fragment.length,
      };
      this.partials.set(fragment.messageSeq, partial);
    }
    if (partial.msgType !== fragment.msgType || partial.body.length !== fragment.length) return false;
    const end = fragment.fragmentOffset + fragment.body.length;
    for (let i = fragment.fragmentOffset; i < end; i++) {
      if (partial.have[i] === 0) {
        partial.have[i] = 1;
        partial.missing--;
      }
    }
    fragment.body.copy(partial.body, fragment.fragmentOffset);
    return true;
  }

  /** Removes and returns the message with this sequence number if it is complete. */
  take(messageSeq: number): HandshakeMessage | undefined {
    const partial = this.partials.get(messageSeq);
    if (!partial || partial.missing > 0) return undefined;
    this.partials.delete(messageSeq);
    return { msgType: partial.msgType, messageSeq, body: partial.body };
  }

  /** Forgets messages below a sequence number (already processed). */
  discardBelow(messageSeq: number): void {
    for (const seq of this.partials.keys()) if (seq < messageSeq) this.partials.delete(seq);
  }
}
