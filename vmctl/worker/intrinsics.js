// Part of the vmctl prelude: one strict function body made of several files (see prelude.js).
// What every other part uses: the built-ins, captured before user code can replace them
// (a script may redefine Array.prototype.push or Map), and what a value is.

// -- intrinsics, captured before user code can replace them ---------------
const ReflectApply = Reflect.apply;
// uncurry(fn)(self, ...args) is fn.call(self, ...args): a bound Function.prototype.call, so
// a call makes no rest array and no JavaScript frame (the console's hot path is made of these).
const FunctionCall = Function.prototype.call;
const FunctionBind = Function.prototype.bind;
const uncurry = (fn) => ReflectApply(FunctionBind, FunctionCall, [fn]);
const ReflectOwnKeys = Reflect.ownKeys;
const { keys: ObjectKeys, getOwnPropertyNames, getOwnPropertySymbols,
  getOwnPropertyDescriptor, getPrototypeOf, defineProperty, is: ObjectIs,
  freeze } = Object;
const hasOwn = Object.hasOwn;
const isEnumerable = uncurry(Object.prototype.propertyIsEnumerable);
const objectToString = uncurry(Object.prototype.toString);
const ObjectPrototype = Object.prototype;
const ArrayPrototype = Array.prototype;
const isArray = Array.isArray;
const push = uncurry(ArrayPrototype.push);
const join = uncurry(ArrayPrototype.join);
const arrayIncludes = uncurry(ArrayPrototype.includes);
const arrayIndexOf = uncurry(ArrayPrototype.indexOf);
const splice = uncurry(ArrayPrototype.splice);
const unshift = uncurry(ArrayPrototype.unshift);
const pop = uncurry(ArrayPrototype.pop);
const slice = uncurry(String.prototype.slice);
const includes = uncurry(String.prototype.includes);
const indexOf = uncurry(String.prototype.indexOf);
const startsWith = uncurry(String.prototype.startsWith);
const endsWith = uncurry(String.prototype.endsWith);
const repeat = uncurry(String.prototype.repeat);
const padStart = uncurry(String.prototype.padStart);
const padEnd = uncurry(String.prototype.padEnd);
const charCodeAt = uncurry(String.prototype.charCodeAt);
const codePointAt = uncurry(String.prototype.codePointAt);
const split = uncurry(String.prototype.split);
const replaceAll = uncurry(String.prototype.replaceAll);
const trimEnd = uncurry(String.prototype.trimEnd);
const toWellFormed = uncurry(String.prototype.toWellFormed);
const isWellFormed = uncurry(String.prototype.isWellFormed);
const NumberCtor = Number;
const numberToString = uncurry(Number.prototype.toString);
const toFixed = uncurry(Number.prototype.toFixed);
const regexpExec = uncurry(RegExp.prototype.exec);
const regexpToString = uncurry(RegExp.prototype.toString);
const functionToString = uncurry(Function.prototype.toString);
const symbolToString = uncurry(Symbol.prototype.toString);
const dateToISOString = uncurry(Date.prototype.toISOString);
const dateGetTime = uncurry(Date.prototype.getTime);
const errorToString = uncurry(Error.prototype.toString);
const JSONStringify = JSON.stringify;
const { floor, max, min, round, sqrt } = Math;
const MapCtor = Map;
const mapGet = uncurry(Map.prototype.get);
const mapSet = uncurry(Map.prototype.set);
const mapHas = uncurry(Map.prototype.has);
const mapDelete = uncurry(Map.prototype.delete);
const mapEntries = uncurry(Map.prototype.entries);
const setValues = uncurry(Set.prototype.values);
const mapSize = uncurry(getOwnPropertyDescriptor(Map.prototype, "size").get);
const setSize = uncurry(getOwnPropertyDescriptor(Set.prototype, "size").get);
const setIteratorNext = uncurry(getPrototypeOf(new Set().values()).next);
const mapIteratorNext = uncurry(getPrototypeOf(new Map().entries()).next);
const TypedArrayPrototype = getPrototypeOf(Uint8Array.prototype);
const typedArrayTag = uncurry(getOwnPropertyDescriptor(TypedArrayPrototype, Symbol.toStringTag).get);
const typedArrayLength = uncurry(getOwnPropertyDescriptor(TypedArrayPrototype, "length").get);
const arrayBufferByteLength = uncurry(getOwnPropertyDescriptor(ArrayBuffer.prototype, "byteLength").get);
const sharedByteLength = uncurry(getOwnPropertyDescriptor(SharedArrayBuffer.prototype, "byteLength").get);
const dataViewByteLength = uncurry(getOwnPropertyDescriptor(DataView.prototype, "byteLength").get);
const regexpSource = uncurry(getOwnPropertyDescriptor(RegExp.prototype, "source").get);
const weakMapHas = uncurry(WeakMap.prototype.has);
const weakSetHas = uncurry(WeakSet.prototype.has);
const PromiseCtor = Promise;
const promiseResolve = (value) => ReflectApply(Promise.resolve, PromiseCtor, [value]);
const promiseThen = uncurry(Promise.prototype.then);
const isNativeError = Error.isError;
const captureStackTrace = Error.captureStackTrace;
const now = performance.now.bind(performance);
const Uint8ArrayCtor = Uint8Array;
const uint8Join = uncurry(Uint8Array.prototype.join);
const customInspect = Symbol.for("nodejs.util.inspect.custom");
const boxes = [
  ["Number", Number.prototype.valueOf], ["String", String.prototype.valueOf],
  ["Boolean", Boolean.prototype.valueOf], ["BigInt", BigInt.prototype.valueOf],
  ["Symbol", Symbol.prototype.valueOf],
];
const functionKinds = new MapCtor([
  [getPrototypeOf(async function () {}), "AsyncFunction"],
  [getPrototypeOf(function* () {}), "GeneratorFunction"],
  [getPrototypeOf(async function* () {}), "AsyncGeneratorFunction"],
]);
const builtInObjects = new MapCtor();
for (const name of getOwnPropertyNames(globalThis)) {
  if (regexpExec(/^[A-Z][a-zA-Z0-9]+$/, name) !== null) mapSet(builtInObjects, name, true);
}

// -- stack-trace hooks are handed no functions -----------------------------
// QuickJS-NG implements V8's Error.prepareStackTrace: a hook user code sets is handed one
// call site per frame, and a call site's getFunction() answers that frame's function,
// strict or not. Called while the prelude or `require` runs (a getter, a proxy trap, a
// toJSON), a hook would be handed their closures, and through them the host's callables.
// Every call site shares one prototype: its getFunction is replaced here, before any
// user code runs, and the native one is dropped (nothing else refers to it).
function hideFrameFunctions() {
  let sitePrototype;
  Error.prepareStackTrace = (error, sites) => {
    sitePrototype = getPrototypeOf(sites[0]);
    return "";
  };
  try {
    new Error("call sites");
  } finally {
    Error.prepareStackTrace = undefined;
  }
  defineProperty(sitePrototype, "getFunction", {
    value: function getFunction() { return undefined; },
    writable: true, enumerable: false, configurable: true,
  });
}
hideFrameFunctions();

// -- what a value is (brand checks: a toStringTag cannot fake these) ------
function brand(check, value) {
  try {
    check(value);
    return true;
  } catch {
    return false;
  }
}
const isMap = (v) => brand(mapSize, v);
const isSet = (v) => brand(setSize, v);
const isDate = (v) => brand(dateGetTime, v);
const isRegExp = (v) => v !== RegExp.prototype && brand(regexpSource, v);
const isTypedArray = (v) => typedArrayTag(v) !== undefined;
const isArrayBuffer = (v) => brand(arrayBufferByteLength, v);
const isSharedArrayBuffer = (v) => brand(sharedByteLength, v);
const isDataView = (v) => brand(dataViewByteLength, v);
const isWeakMap = (v) => brand((x) => weakMapHas(x, ObjectPrototype), v);
const isWeakSet = (v) => brand((x) => weakSetHas(x, ObjectPrototype), v);
const isPromise = (v) => v instanceof PromiseCtor || objectToString(v) === "[object Promise]";
const isError = (v) => isNativeError(v) || v instanceof Error;
const isArguments = (v) => objectToString(v) === "[object Arguments]";
function boxedType(v) {
  for (const [type, valueOf] of boxes) {
    if (brand((x) => ReflectApply(valueOf, x, []), v)) return [type, ReflectApply(valueOf, v, [])];
  }
  return undefined;
}

function typeName(v) {
  if (v === null) return "null";
  const type = typeof v;
  if (type !== "object") return type;
  if (isArray(v)) return "array";
  if (isError(v)) return "error";
  if (isDate(v)) return "date";
  if (isMap(v)) return "map";
  if (isSet(v)) return "set";
  if (isPromise(v)) return "promise";
  if (isRegExp(v)) return "regexp";
  return "object";
}
