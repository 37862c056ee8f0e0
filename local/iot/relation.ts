/**
 * A many-to-many relation indexed both ways (thing ↔ principal, policy ↔ target), so lookups from
 * either side cost as much as the answer, not a scan of every thing or policy. Insertion order is
 * kept on both sides.
 */
export class Relation {
  private readonly forward = new Map<string, Set<string>>();
  private readonly reverse = new Map<string, Set<string>>();

  constructor(entries: Record<string, string[]> = {}) {
    for (const [left, rights] of Object.entries(entries)) for (const right of rights) this.add(left, right);
  }

  /** Links left to right; false when they were linked already. */
  add(left: string, right: string): boolean {
    if (this.forward.get(left)?.has(right)) return false;
    link(this.forward, left, right);
    link(this.reverse, right, left);
    return true;
  }

  /** Unlinks left from right; false when they were not linked. */
  remove(left: string, right: string): boolean {
    if (!this.forward.get(left)?.delete(right)) return false;
    this.reverse.get(right)?.delete(left);
    return true;
  }

  /** What a left value is linked to. */
  rightsOf(left: string): string[] {
    return [...(this.forward.get(left) ?? [])];
  }

  /** What a right value is linked to. */
  leftsOf(right: string): string[] {
    return [...(this.reverse.get(right) ?? [])];
  }

  /** Drops every link of a left value. */
  removeLeft(left: string): void {
    for (const right of this.forward.get(left) ?? []) this.reverse.get(right)?.delete(left);
    this.forward.delete(left);
  }

  /** Drops every link of a right value. */
  removeRight(right: string): void {
    for (const left of this.reverse.get(right) ?? []) this.forward.get(left)?.delete(right);
    this.reverse.delete(right);
  }

  /** Drops every link. */
  clear(): void {
    this.forward.clear();
    this.reverse.clear();
  }

  /** The links as `{ left: [rights] }` (for snapshots). */
  toJSON(): Record<string, string[]> {
    return Object.fromEntries([...this.forward].filter(([, r]) => r.size > 0).map(([l, r]) => [l, [...r]]));
  }
}

function link(map: Map<string, Set<string>>, key: string, value: string): void {
  let values = map.get(key);
  if (!values) {
    values = new Set();
    map.set(key, values);
  }
  values.add(value);
}
