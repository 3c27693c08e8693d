/** Assertion shims over node:assert/strict, named like the usual Deno ones. */
import assert from "node:assert/strict";

/** Deep strict equality. */
export function assertEquals<T>(actual: unknown, expected: T, message?: string): void {
  assert.deepStrictEqual(actual, expected, message);
}

/** Asserts that `fn` throws, optionally an instance of `type`. */
export function assertThrows(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  type?: new (...args: any[]) => Error,
  includes?: string,
): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  assert.ok(thrown !== undefined, "expected the function to throw");
  if (type) assert.ok(thrown instanceof type, `expected ${type.name}, got ${thrown}`);
  if (includes) {
    assert.ok(String((thrown as Error).message).includes(includes), `message: ${thrown}`);
  }
}
