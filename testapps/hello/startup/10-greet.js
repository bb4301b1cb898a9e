// Startup file 2 of 2: builds on the global the first one set.
globalThis.greet = function greet(name) {
  return `${greeting}, ${name}!`;
};
startupOrder.push("10-greet");
