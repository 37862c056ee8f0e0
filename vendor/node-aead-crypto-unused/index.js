// node-dtls-client loads node-aead-crypto only on Node < 10 (build/lib/AEADCrypto.js); this
// project needs Node >= 20.6, so reaching this file is a bug.
throw new Error("node-aead-crypto is not available: node-dtls-client uses node:crypto on Node >= 10");
