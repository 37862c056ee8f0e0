/** RFC 7252 numbers the gateway uses (§4.8 transmission parameters, §12 registries). */

export const MessageType = { confirmable: 0, nonConfirmable: 1, acknowledgement: 2, reset: 3 } as const;

/** §4.8: ACK_TIMEOUT, ACK_RANDOM_FACTOR, MAX_RETRANSMIT; §4.8.2: EXCHANGE_LIFETIME. */
export const ACK_TIMEOUT_MS = 2_000;
export const ACK_RANDOM_FACTOR = 1.5;
export const MAX_RETRANSMIT = 4;
export const EXCHANGE_LIFETIME_MS = 247_000;

/** §12.3 Content-Formats. */
export const ContentFormat = {
  textPlain: 0,
  octetStream: 42,
  json: 50,
} as const;

/** §12.2 option numbers (and RFC 7959's Block1/Block2). */
export const OptionNumber = {
  ifMatch: 1,
  uriHost: 3,
  eTag: 4,
  ifNoneMatch: 5,
  observe: 6,
  uriPort: 7,
  locationPath: 8,
  uriPath: 11,
  contentFormat: 12,
  maxAge: 14,
  uriQuery: 15,
  accept: 17,
  locationQuery: 20,
  block2: 23,
  block1: 27,
  size2: 28,
  proxyUri: 35,
  proxyScheme: 39,
  size1: 60,
} as const;

/** coap-packet names options; these are the names of the numbers above that a request may carry. */
export const OPTION_NUMBER_BY_NAME: Readonly<Record<string, number>> = {
  "If-Match": OptionNumber.ifMatch,
  "Uri-Host": OptionNumber.uriHost,
  ETag: OptionNumber.eTag,
  "If-None-Match": OptionNumber.ifNoneMatch,
  Observe: OptionNumber.observe,
  "Uri-Port": OptionNumber.uriPort,
  "Location-Path": OptionNumber.locationPath,
  "Uri-Path": OptionNumber.uriPath,
  "Content-Format": OptionNumber.contentFormat,
  "Max-Age": OptionNumber.maxAge,
  "Uri-Query": OptionNumber.uriQuery,
  Accept: OptionNumber.accept,
  "Location-Query": OptionNumber.locationQuery,
  Block2: OptionNumber.block2,
  Block1: OptionNumber.block1,
  Size2: OptionNumber.size2,
  "Proxy-Uri": OptionNumber.proxyUri,
  "Proxy-Scheme": OptionNumber.proxyScheme,
  Size1: OptionNumber.size1,
  OSCORE: 9,
  "Hop-Limit": 16,
  "Q-Block1": 19,
  "Q-Block2": 31,
  "No-Response": 258,
  "OCF-Accept-Content-Format-Version": 2049,
  "OCF-Content-Format-Version": 2053,
};

/** Request method codes (0.01-0.04) by name. */
export const METHOD_BY_CODE: Readonly<Record<string, CoapMethod>> = {
  "0.01": "GET",
  "0.02": "POST",
  "0.03": "PUT",
  "0.04": "DELETE",
  "0.05": "FETCH",
  "0.06": "PATCH",
  "0.07": "iPATCH",
};

export type CoapMethod = "GET" | "POST" | "PUT" | "DELETE" | "FETCH" | "PATCH" | "iPATCH";

/** Response codes used here, as coap-packet writes them ("c.dd"). */
export const ResponseCode = {
  created: "2.01",
  deleted: "2.02",
  valid: "2.03",
  changed: "2.04",
  content: "2.05",
  badRequest: "4.00",
  unauthorized: "4.01",
  badOption: "4.02",
  forbidden: "4.03",
  notFound: "4.04",
  methodNotAllowed: "4.05",
  requestEntityTooLarge: "4.13",
  unsupportedContentFormat: "4.15",
  internalServerError: "5.00",
  notImplemented: "5.01",
  serviceUnavailable: "5.03",
} as const;

/** Encodes an unsigned integer option value in as few bytes as it needs (§3.2 "uint"). */
export function encodeUint(value: number): Buffer {
  if (value === 0) return Buffer.alloc(0);
  const bytes: number[] = [];
  for (let v = value; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from(bytes);
}

export function decodeUint(value: Buffer): number {
  let n = 0;
  for (const byte of value) n = n * 256 + byte;
  return n;
}
