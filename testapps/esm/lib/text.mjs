import { add } from "./math.mjs";

export function shout(text) {
  return `${text.toUpperCase()}!${"!".repeat(add(0, 1))}`;
}
