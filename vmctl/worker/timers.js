// Part of the vmctl prelude: one strict function body made of several files (see prelude.js).
// setTimeout, setInterval, clearTimeout and clearInterval, with their queue kept here. The
// worker's event loop (engine.py) runs it: after the microtasks of each turn it calls
// timerStep(), which runs the earliest due timer, or says how long to wait for it; when an
// execution fails it calls clearTimers(), so no callback outlives its execution. Nothing runs
// between executions: an execution ends once its value has settled and its timers have run or
// been cleared, as `node script.js` ends when its event loop is empty.
//
// Choices where the standards differ: ids are numbers, as in browsers, Deno and WinterTC
// (Node returns Timeout objects); a delay is Node's (a number from 1 to 2^31-1 ms, anything
// else is 1); a callback runs with `this` the global object, as in browsers; a string callback
// (HTML's eval form) is a TypeError, as in Node.

const TIMEOUT_MAX = 2 ** 31 - 1;
const timerHeap = []; // live and cleared timers, a binary min-heap by (due, seq)
const liveTimers = new MapCtor(); // id -> timer, until it has run or is cleared
const mapClear = uncurry(Map.prototype.clear);
let lastTimerId = 0;
let lastTimerSeq = 0;
// Live timers that keep their execution running. The runtime's own (AbortSignal.timeout) do
// not, as an unref'd timer in Node does not keep the process alive: they fire while the
// execution runs for other reasons, and are dropped when it ends.
let heldOpen = 0;

function timerBefore(a, b) {
  return a.due < b.due || (a.due === b.due && a.seq < b.seq);
}

function heapPush(timer) {
  let i = timerHeap.length;
  push(timerHeap, timer);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!timerBefore(timer, timerHeap[parent])) break;
    timerHeap[i] = timerHeap[parent];
    timerHeap[parent] = timer;
    i = parent;
  }
}

function heapPop() {
  const top = timerHeap[0];
  const last = pop(timerHeap);
  if (timerHeap.length === 0) return top;
  timerHeap[0] = last;
  let i = 0;
  for (;;) {
    const left = 2 * i + 1;
    const right = left + 1;
    let least = i;
    if (left < timerHeap.length && timerBefore(timerHeap[left], timerHeap[least])) least = left;
    if (right < timerHeap.length && timerBefore(timerHeap[right], timerHeap[least])) least = right;
    if (least === i) return top;
    timerHeap[i] = timerHeap[least];
    timerHeap[least] = last;
    i = least;
  }
}

// How Node's ERR_INVALID_ARG_TYPE names what it got instead.
function describeReceived(value) {
  if (value === null || value === undefined) return ` Received ${value}`;
  if (typeof value === "object") return " Received an instance of Object";
  return ` Received type ${typeof value} (${inspect(value)})`;
}

function addTimer(callback, delay, args, repeat, caller, holdsOpen = true) {
  if (typeof callback !== "function") {
    const error = new TypeError(
      `The "callback" argument must be of type function.${describeReceived(callback)}`);
    error.code = "ERR_INVALID_ARG_TYPE";
    captureStackTrace(error, caller); // the stack starts at the user's call
    throw error;
  }
  let ms = +delay; // Node: Number(delay), then anything outside 1..2^31-1 is 1
  if (!(ms >= 1 && ms <= TIMEOUT_MAX)) ms = 1;
  const timer = {
    id: ++lastTimerId, due: now() + ms, seq: ++lastTimerSeq, callback, args,
    interval: repeat ? ms : 0, holdsOpen,
  };
  if (holdsOpen) heldOpen++;
  mapSet(liveTimers, timer.id, timer);
  heapPush(timer);
  return timer.id;
}

function setTimeout(callback, delay, ...args) {
  return addTimer(callback, delay, args, false, setTimeout);
}

function setInterval(callback, delay, ...args) {
  return addTimer(callback, delay, args, true, setInterval);
}

// The runtime's own timer that does not keep the execution running (see heldOpen).
function setBackgroundTimeout(callback, delay) {
  return addTimer(callback, delay, [], false, setBackgroundTimeout, false);
}

// Either clears either kind, as in HTML and Node. An unknown id, or anything else, is ignored.
function clearTimer(id) {
  const key = typeof id === "number" ? id : NumberCtor(id);
  const timer = mapGet(liveTimers, key);
  if (timer === undefined) return;
  if (timer.holdsOpen) heldOpen--;
  mapDelete(liveTimers, key); // a cleared timer stays in the heap until it comes up, skipped
}

function clearTimeout(id) {
  clearTimer(id);
}

function clearInterval(id) {
  clearTimer(id);
}

// Run the earliest due timer and return 0, or return how many milliseconds until one is
// due, or -1 when none that holds the execution open is pending (the others are dropped).
// A callback's throw propagates: the execution fails.
function timerStep() {
  if (heldOpen === 0) {
    clearTimers();
    return -1;
  }
  while (timerHeap.length !== 0) {
    const timer = timerHeap[0];
    if (mapGet(liveTimers, timer.id) !== timer) {
      heapPop(); // cleared
      continue;
    }
    const started = now();
    if (timer.due > started) return timer.due - started;
    heapPop();
    if (timer.interval !== 0) {
      timer.due = started + timer.interval;
      timer.seq = ++lastTimerSeq;
      heapPush(timer);
    } else {
      mapDelete(liveTimers, timer.id);
      if (timer.holdsOpen) heldOpen--;
    }
    ReflectApply(timer.callback, globalThis, timer.args);
    return 0;
  }
  return -1;
}

function clearTimers() {
  mapClear(liveTimers);
  timerHeap.length = 0;
  heldOpen = 0;
}

for (const timerFunction of [setTimeout, setInterval, clearTimeout, clearInterval]) {
  defineProperty(globalThis, timerFunction.name, {
    value: timerFunction, writable: true, configurable: true, enumerable: true,
  });
}
