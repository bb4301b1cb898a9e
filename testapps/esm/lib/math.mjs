export function add(a, b) {
  return a + b;
}

export function square(n) {
  return n * n;
}
