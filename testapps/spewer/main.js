// Logs many lines (3000 unless __ARGS__.lines says otherwise).
(function spew(args) {
  const lines = (args && args.lines) || 3000;
  for (let i = 1; i <= lines; i++) {
    console.log(`line ${i} of ${lines}: ${"x".repeat(40)}`);
  }
  return lines;
})(typeof __ARGS__ === "object" ? __ARGS__ : {});
