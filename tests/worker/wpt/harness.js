// A small testharness.js for web-platform-tests `.any.js` files, run in one QuickJS context.
//
// WPT's own testharness.js needs a document or a worker scope and reports through
// postMessage; this keeps its test/assert vocabulary and records each test's outcome in
// `__wpt`. A runner evaluates this once, then each test file inside a function (so files
// do not share declarations), then awaits `__wpt.report()`: `{ total, failures }`, where
// failures are `[name, message]` pairs. Assertions follow testharness.js: assert_equals
// compares with SameValue (NaN equals NaN, 0 and -0 differ), assert_throws_js checks the
// thrown value's constructor, assert_throws_dom its DOMException name.
(function () {
  "use strict";
  const { is } = Object;
  const toString = Object.prototype.toString;
  let tests = [];
  let pending = [];

  class AssertionError extends Error {}
  AssertionError.prototype.name = "AssertionError";

  function format_value(value) {
    if (typeof value === "string") return JSON.stringify(value);
    if (typeof value === "number" && is(value, -0)) return "-0";
    if (typeof value === "bigint") return `${value}n`;
    try {
      return String(value);
    } catch {
      return toString.call(value);
    }
  }

  function fail(description, text) {
    throw new AssertionError(description ? `${description}: ${text}` : text);
  }

  function assert(condition, description, text) {
    if (!condition) fail(description, text);
  }

  function assert_equals(actual, expected, description) {
    assert(is(actual, expected), description,
      `expected ${format_value(expected)} but got ${format_value(actual)}`);
  }

  function assert_not_equals(actual, expected, description) {
    assert(!is(actual, expected), description, `got disallowed value ${format_value(actual)}`);
  }

  function assert_true(actual, description) {
    assert(actual === true, description, `expected true got ${format_value(actual)}`);
  }

  function assert_false(actual, description) {
    assert(actual === false, description, `expected false got ${format_value(actual)}`);
  }

  function assert_array_equals(actual, expected, description) {
    assert(typeof actual === "object" && actual !== null, description,
      `value is ${format_value(actual)}, expected array`);
    assert(actual.length === expected.length, description,
      `lengths differ, expected ${expected.length} got ${actual.length}`);
    for (let i = 0; i < expected.length; i++) {
      assert(is(actual[i], expected[i]), description,
        `expected ${format_value(expected[i])} but got ${format_value(actual[i])} at index ${i}`);
    }
  }

  function assert_in_array(actual, expected, description) {
    assert(expected.indexOf(actual) !== -1, description, `value ${format_value(actual)} not in array`);
  }

  function assert_own_property(object, name, description) {
    assert(Object.prototype.hasOwnProperty.call(object, name), description,
      `expected own property ${format_value(name)}`);
  }

  function assert_class_string(object, name, description) {
    const actual = toString.call(object);
    assert(actual === `[object ${name}]`, description,
      `expected [object ${name}] but got ${actual}`);
  }

  function assert_less_than(actual, expected, description) {
    assert(actual < expected, description, `expected a number less than ${expected} but got ${actual}`);
  }

  function assert_greater_than(actual, expected, description) {
    assert(actual > expected, description, `expected a number greater than ${expected} but got ${actual}`);
  }

  function assert_unreached(description) {
    fail(description, "reached unreachable code");
  }

  function thrown(fn, description) {
    try {
      fn();
    } catch (error) {
      return { error };
    }
    return fail(description, "function did not throw");
  }

  function assert_throws_js(constructor, fn, description) {
    const { error } = thrown(fn, description);
    assert(typeof error === "object" && error !== null && error.constructor === constructor,
      description, `expected a ${constructor.name} but got ${format_value(error)}`);
  }

  function assert_throws_dom(name, fn, description) {
    const { error } = thrown(fn, description);
    assert(error instanceof DOMException && error.name === name, description,
      `expected DOMException ${name} but got ${format_value(error)}`);
  }

  function assert_throws_exactly(expected, fn, description) {
    const { error } = thrown(fn, description);
    assert(is(error, expected), description, `expected ${format_value(expected)} but got ${format_value(error)}`);
  }

  // The legacy form: assert_throws(new TypeError(), fn) compares the name.
  function assert_throws(code, fn, description) {
    const { error } = thrown(fn, description);
    const name = typeof code === "string" ? code : code.name;
    assert(error !== null && typeof error === "object" && error.name === name, description,
      `expected ${name} but got ${format_value(error)}`);
  }

  class Test {
    constructor(name) {
      this.name = name;
      this.cleanups = [];
      this.done_ = null;
    }
    step(fn, self, ...args) {
      return fn.apply(self === undefined ? this : self, args);
    }
    step_func(fn, self) {
      return (...args) => this.step(fn, self, ...args);
    }
    step_func_done(fn, self) {
      return (...args) => {
        try {
          if (fn) this.step(fn, self, ...args);
          this.done();
        } catch (error) {
          this.fail(error);
        }
      };
    }
    unreached_func(description) {
      return () => this.fail(new AssertionError(description || "unreached_func called"));
    }
    add_cleanup(fn) {
      this.cleanups.push(fn);
    }
    done() {
      if (this.resolve) this.resolve();
    }
    fail(error) {
      if (this.reject) this.reject(error);
    }
  }

  function record(t, error) {
    for (const cleanup of t.cleanups) cleanup();
    tests.push([t.name, error === undefined ? null : message(error)]);
  }

  function message(error) {
    try {
      return error instanceof Error ? `${error.name}: ${error.message}` : `threw ${format_value(error)}`;
    } catch {
      return "threw an unprintable value";
    }
  }

  function test(fn, name) {
    const t = new Test(name);
    try {
      t.step(fn, t, t);
      record(t);
    } catch (error) {
      record(t, error);
    }
  }

  function settle(t, promise) {
    pending.push(promise.then(() => record(t), (error) => record(t, error)));
  }

  function promise_test(fn, name) {
    const t = new Test(name);
    settle(t, new Promise((resolve) => resolve(t.step(fn, t, t))));
  }

  function async_test(fn, name) {
    if (typeof fn === "string") [fn, name] = [undefined, fn];
    const t = new Test(name);
    settle(t, new Promise((resolve, reject) => {
      t.resolve = resolve;
      t.reject = reject;
      try {
        if (fn) t.step(fn, t, t);
      } catch (error) {
        reject(error);
      }
    }));
    return t;
  }

  function promise_rejects_js(t, constructor, promise, description) {
    return promise.then(
      () => fail(description, "promise did not reject"),
      (error) => assert(error !== null && typeof error === "object" && error.constructor === constructor,
        description, `expected a ${constructor.name} but got ${format_value(error)}`));
  }

  function promise_rejects_dom(t, name, promise, description) {
    return promise.then(
      () => fail(description, "promise did not reject"),
      (error) => assert(error instanceof DOMException && error.name === name, description,
        `expected DOMException ${name} but got ${format_value(error)}`));
  }

  // /common/sab.js
  function createBuffer(type, length, options) {
    if (type === "SharedArrayBuffer") return new SharedArrayBuffer(length, options);
    return new ArrayBuffer(length, options);
  }

  const api = {
    test, promise_test, async_test, format_value, createBuffer,
    assert_equals, assert_not_equals, assert_true, assert_false, assert_array_equals,
    assert_in_array, assert_own_property, assert_class_string, assert_less_than,
    assert_greater_than, assert_unreached, assert_throws_js, assert_throws_dom,
    assert_throws_exactly, assert_throws, promise_rejects_js, promise_rejects_dom,
    setup: (fn) => (typeof fn === "function" ? fn() : undefined),
    done: () => {},
    subsetTest: (testFunction, ...args) => testFunction(...args),
    self: globalThis,
  };
  for (const name of Object.keys(api)) globalThis[name] = api[name];

  globalThis.__wpt = {
    // Every outcome so far, then a fresh start for the next file.
    async report() {
      while (pending.length) {
        const waiting = pending;
        pending = [];
        await Promise.all(waiting);
      }
      const failures = tests.filter(([, error]) => error !== null);
      const report = { total: tests.length, failures };
      tests = [];
      return report;
    },
  };
})();
