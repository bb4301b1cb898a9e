// Uses the globals the startup files defined; __ARGS__ comes from --args.
// A function scope keeps the file re-runnable in the same session (no
// top-level const to redeclare); its return value is the file's value.
(function main(args) {
  const name = (args && args.name) || "world";
  console.log(greet(name));
  console.log("startup order:", startupOrder.join(","));
  return { greeting: greet(name), startup: startupOrder.length };
})(typeof __ARGS__ === "object" ? __ARGS__ : {});
