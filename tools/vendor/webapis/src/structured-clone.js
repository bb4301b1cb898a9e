// structuredClone: @ungap/structured-clone. build.mjs defines the global name
// `structuredClone` as undefined inside this bundle: the library would otherwise defer to
// a global structuredClone, which is this very function once installed.
import clone from "@ungap/structured-clone";

export { clone as structuredClone };
