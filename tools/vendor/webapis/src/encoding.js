// TextEncoder and TextDecoder: @exodus/bytes without the multi-byte (CJK) tables:
// UTF-8, UTF-16LE/BE and every single-byte encoding of the Encoding Standard.
export { TextEncoder, TextDecoder } from "@exodus/bytes/encoding-lite.js";
