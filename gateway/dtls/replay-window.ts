/** The 64-entry sliding anti-replay window of RFC 6347 §4.1.2.6, one per epoch. */
const WIDTH = 64n;

export class ReplayWindow {
  private highest = -1;
  private bits = 0n; // bit i set: highest - i seen

  /** True if the sequence number is new and not left of the window. Does not record it. */
  isFresh(sequence: number): boolean {
    if (sequence > this.highest) return true;
    const offset = BigInt(this.highest - sequence);
    if (offset >= WIDTH) return false;
    return ((this.bits >> offset) & 1n) === 0n;
  }

  /** Record a sequence number, once its record has authenticated. */
  accept(sequence: number): void {
    if (sequence > this.highest) {
      const shift = BigInt(sequence - this.highest);
      this.bits = shift >= WIDTH ? 1n : ((this.bits << shift) | 1n) & ((1n << WIDTH) - 1n);
      this.highest = sequence;
      return;
    }
    const offset = BigInt(this.highest - sequence);
    if (offset < WIDTH) this.bits |= 1n << offset;
  }
}
