// An ES module entry importing sibling modules.
import { add, square } from "./lib/math.mjs";
import { shout } from "./lib/text.mjs";

const total = add(square(3), 4);
console.log(shout(`esm total ${total}`));
