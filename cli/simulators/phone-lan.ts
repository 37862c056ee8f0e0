/**
 * The phone's LAN side of binding (seeds 001/003): hear `device.info.notify` (a CoAP server on a
 * UDP port, in the AWSS multicast group) and answer it with `{"id","code":200}` as the app does
 * (the device then stops notifying), and/or ask with a CoAP GET `/sys/device/info/get` (to the
 * multicast group, non-confirmable, or to one device, confirmable) carrying `{"id": ...}`, the
 * field the SDK echoes back.
 */
import { createSocket, type Socket } from "node:dgram";
import { Agent, createServer, type IncomingMessage, type Server } from "coap";
import {
  AWSS_COAP_PORT,
  AWSS_MULTICAST_GROUP,
  type DiscoveredDevice,
  NOTIFY_PATH,
  notifyAck,
  parseLanMessage,
} from "./bind-protocol.ts";

export type FoundDevice = DiscoveredDevice & {
  /** How it was heard: a device.info.notify, or the answer to our GET. */
  via: "notify" | "get";
  /** The UDP address it came from. */
  from: string;
};

export type DiscoverOptions = {
  /** Listen for notifies on this UDP port (undefined: do not listen). */
  listenPort?: number;
  listenHost?: string;
  /** Join the AWSS group to hear multicast notifies, and send the GET to it when no device is named. */
  multicast: boolean;
  /** Send GET to these devices (unicast); with `multicast` and none named, to the group. */
  get?: { devices: { host: string; port: number }[]; path: string };
  timeoutMs: number;
  /** Stop at the first device found. */
  first?: boolean;
  onFound?: (device: FoundDevice) => void;
  /** Said once each: the multicast group cannot be joined, a send failed. */
  onWarning?: (text: string) => void;
};

/** Listens and/or asks for `timeoutMs` (or until the first device with `first`); returns what it found. */
export async function discoverDevices(options: DiscoverOptions): Promise<FoundDevice[]> {
  const found: FoundDevice[] = [];
  const seen = new Set<string>();
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const record = (device: FoundDevice) => {
    const key = `${device.productKey}/${device.deviceName}/${device.token}`;
    if (seen.has(key)) return;
    seen.add(key);
    found.push(device);
    options.onFound?.(device);
    if (options.first) finish();
  };
  const warn = options.onWarning ?? (() => {});

  let socket: Socket | undefined;
  let server: Server | undefined;
  if (options.listenPort !== undefined) {
    socket = await bindSocket(options.listenPort, options.listenHost ?? "0.0.0.0");
    if (options.multicast) {
      try {
        socket.setMulticastLoopback(true);
        socket.addMembership(AWSS_MULTICAST_GROUP);
      } catch (error) {
        warn(
          `cannot join ${AWSS_MULTICAST_GROUP} (${(error as Error).message}): only unicast notifies arrive`,
        );
      }
    }
    server = createServer({ type: "udp4" }, (req, res) => {
      const path = req.url.split("?")[0] ?? "";
      const message = path === NOTIFY_PATH ? parseLanMessage(req.payload.toString("utf8")) : undefined;
      if (!message) {
        res.code = "4.04";
        res.end();
        return;
      }
      res.setOption("Content-Format", "application/json");
      res.end(notifyAck(message.id ?? "0"));
      record({ ...message.device, via: "notify", from: `${req.rsinfo.address}:${req.rsinfo.port}` });
    });
    server.on("error", (error: Error) => warn(`CoAP listener: ${error.message}`));
    server.listen(socket);
  }

  // The client's own socket: closing it ends everything at once (Agent.close waits for answers that
  // may never come).
  const clientSocket = createSocket("udp4");
  const agent = new Agent({ type: "udp4", socket: clientSocket });
  agent.on("error", (error: Error) => warn(`CoAP client: ${error.message}`));
  if (options.get) {
    const targets = options.get.devices.length
      ? options.get.devices.map((d) => ({ ...d, multicast: false }))
      : options.multicast
        ? [{ host: AWSS_MULTICAST_GROUP, port: AWSS_COAP_PORT, multicast: true }]
        : [];
    let id = 0;
    for (const target of targets) {
      id += 1;
      const req = agent.request({
        host: target.host,
        port: target.port,
        method: "GET",
        pathname: options.get.path,
        confirmable: !target.multicast,
        ...(target.multicast ? { multicast: true, multicastTimeout: options.timeoutMs } : {}),
      });
      req.setOption("Content-Format", "application/json");
      req.on("response", (res: IncomingMessage) => {
        const message = parseLanMessage(res.payload.toString("utf8"));
        if (message)
          record({ ...message.device, via: "get", from: `${res.rsinfo.address}:${res.rsinfo.port}` });
      });
      req.on("error", (error: Error) => warn(`GET ${target.host}:${target.port}: ${error.message}`));
      req.on("timeout", () => undefined);
      req.end(JSON.stringify({ id: String(id), version: "1.0", method: "device.info.get", params: {} }));
    }
  }

  const timer = setTimeout(finish, options.timeoutMs);
  await done;
  clearTimeout(timer);
  closeAgent(agent, clientSocket);
  if (server) {
    const s = server;
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
  // The server does not close a socket it was given.
  socket?.close();
  return found;
}

/** Aborts the agent's requests (and their retransmission timers) and closes its socket. */
export function closeAgent(agent: Agent, socket: Socket): void {
  agent.removeAllListeners("error");
  agent.on("error", () => undefined);
  agent.close();
  try {
    socket.close();
  } catch {
    // already closed
  }
}

function bindSocket(port: number, host: string): Promise<Socket> {
  const socket = createSocket({ type: "udp4", reuseAddr: true });
  return new Promise((resolve, reject) => {
    socket.once("error", (error) => {
      socket.close();
      reject(new Error(`cannot listen on UDP ${host}:${port}: ${error.message}`));
    });
    socket.bind(port, host, () => resolve(socket));
  });
}
