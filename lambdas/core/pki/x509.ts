/**
 * @peculiar/x509 with Node's WebCrypto as its provider, set once. Every pki module imports the
 * library from here so the Reflect metadata polyfill (which tsyringe inside it needs) and the
 * provider are in place before first use.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(globalThis.crypto);

export { x509 };
