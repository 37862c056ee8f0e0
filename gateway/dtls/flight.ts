/** What a handshake flight holds before the record layer gives it epochs and sequence numbers. */
export type FlightItem =
  | { kind: "handshake"; epoch: number; msgType: number; messageSeq: number; body: Buffer }
  | { kind: "changeCipherSpec" };
