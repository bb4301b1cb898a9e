// whatwg-url calls `new TextEncoder()` and `new TextDecoder()` as globals when it loads;
// build.mjs injects these in their place, so the URL bundle reads nothing from globalThis.
export { TextEncoder, TextDecoder } from "@exodus/bytes/encoding-lite.js";
