// Shapes, typed: an ES module that main.ts imports (types stripped by the worker).

export type Unit = "cm" | "in";

export interface Shape {
  readonly kind: string;
  area(): number;
}

export enum Precision {
  Coarse = 0,
  Fine = 2,
}

abstract class Base implements Shape {
  abstract readonly kind: string;
  abstract area(): number;

  describe(this: Shape, digits: Precision = Precision.Fine): string {
    return `${this.kind} ${this.area().toFixed(digits)}`;
  }
}

export class Circle extends Base {
  readonly kind = "circle";
  constructor(private readonly radius: number) {
    super();
  }
  area(): number {
    return Math.PI * this.radius ** 2;
  }
}

export class Square extends Base {
  readonly kind = "square";
  constructor(private readonly side: number) {
    super();
    if (side < 0) throw new RangeError("negative side");
  }
  area(): number {
    return this.side ** 2;
  }
}

export function largest<S extends Shape>(shapes: readonly S[]): S | undefined {
  return shapes.reduce<S | undefined>(
    (best: S | undefined, s: S): S => (best === undefined || s.area() > best.area() ? s : best),
    undefined,
  );
}
