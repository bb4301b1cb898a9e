// Never ends on its own: only the wall or CPU limit stops it.
(function loop() {
  console.log("looping forever");
  let spins = 0;
  for (;;) {
    spins++;
  }
})();
