// Keeps every allocation reachable until the heap limit stops it.
(function hog() {
  console.log("allocating");
  const hoard = [];
  for (;;) {
    hoard.push(new Array(1 << 16).fill(hoard.length));
  }
})();
