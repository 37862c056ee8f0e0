/** A UDP proxy on 127.0.0.1 that drops, duplicates and reorders datagrams, seeded so a run repeats. */
import { createSocket, type RemoteInfo } from "node:dgram";

export interface Impairment {
  loss: number;
  duplicate: number;
  /** Chance a datagram is held and sent after the next one. */
  reorder: number;
  seed: number;
}

export interface LossyProxy {
  port: number;
  stats: { forwarded: number; dropped: number; duplicated: number; reordered: number };
  close(): Promise<void>;
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function startLossyProxy(serverPort: number, impairment: Impairment): Promise<LossyProxy> {
  const front = createSocket("udp4");
  const back = createSocket("udp4");
  const random = rng(impairment.seed);
  const stats = { forwarded: 0, dropped: 0, duplicated: 0, reordered: 0 };
  let client: RemoteInfo | undefined;
  const held: { toServer: Buffer | undefined; toClient: Buffer | undefined } = {
    toServer: undefined,
    toClient: undefined,
  };

  const forward = (datagram: Buffer, direction: "toServer" | "toClient") => {
    const send = (d: Buffer) => {
      stats.forwarded++;
      if (direction === "toServer") back.send(d, serverPort, "127.0.0.1");
      else if (client) front.send(d, client.port, client.address);
    };
    if (random() < impairment.loss) {
      stats.dropped++;
      return;
    }
    if (random() < impairment.reorder && !held[direction]) {
      stats.reordered++;
      held[direction] = datagram;
      return;
    }
    send(datagram);
    if (random() < impairment.duplicate) {
      stats.duplicated++;
      send(datagram);
    }
    const late = held[direction];
    if (late) {
      held[direction] = undefined;
      send(late);
    }
  };

  front.on("message", (m, rinfo) => {
    client = rinfo;
    forward(m, "toServer");
  });
  back.on("message", (m) => forward(m, "toClient"));
  await new Promise<void>((r) => front.bind(0, "127.0.0.1", () => r()));
  await new Promise<void>((r) => back.bind(0, "127.0.0.1", () => r()));
  return {
    port: front.address().port,
    stats,
    close: async () => {
      await new Promise<void>((r) => front.close(() => r()));
      await new Promise<void>((r) => back.close(() => r()));
    },
  };
}
