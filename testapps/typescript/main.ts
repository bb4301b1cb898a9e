// Expected console output of `vmctl exec run-file SESSION main.ts` (run as an ES module):
//   circle 3.14
//   square 4.00
//   total area 7.14 cm
//   largest: square
//   RangeError: negative side at lib/shapes.ts:38:29
import type { Shape, Unit } from "./lib/shapes.ts";
import { Circle, Square, largest } from "./lib/shapes.ts";

const shapes: Shape[] = [new Circle(1), new Square(2)];
for (const shape of shapes as (Circle | Square)[]) {
  console.log(shape.describe());
}

const unit: Unit = "cm";
const total = shapes.reduce((sum: number, s: Shape): number => sum + s.area(), 0);
console.log(`total area ${total.toFixed(2)} ${unit satisfies Unit}`);
console.log(`largest: ${largest(shapes)!.kind}`);

// The stack points into the TypeScript source: line and column of `new RangeError`.
try {
  new Square(-1);
} catch (error: unknown) {
  const where = /shapes\.ts:(\d+:\d+)/.exec((error as Error).stack ?? "");
  console.log(`${String(error)} at lib/shapes.ts:${where?.[1]}`);
}
