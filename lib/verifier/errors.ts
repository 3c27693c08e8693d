/** The error that stops the exploration of a path, carrying its diagnostic code. */

import type { DiagnosticCode } from "./types.ts";

/** Thrown by checks; `verify` turns it into a Diagnostic at instruction `pc`. */
export class VerifyError extends Error {
  constructor(readonly code: DiagnosticCode, message: string, readonly pc: number) {
    super(message);
    this.name = "VerifyError";
  }
}

/** Throws a VerifyError. */
export function fail(code: DiagnosticCode, pc: number, message: string): never {
  throw new VerifyError(code, message, pc);
}

/**
 * Thrown by `verify` for a program type it has no rules for: checking such
 * a program would guess its context and return values, so it refuses.
 */
export class UnsupportedProgramTypeError extends Error {
  /** `progType` is the type asked for; `supported` the types the verifier has rules for. */
  constructor(readonly progType: string, supported: readonly string[]) {
    super(
      `the verifier does not support program type ${JSON.stringify(progType)} (it checks ${
        supported.join(", ")
      })`,
    );
    this.name = "UnsupportedProgramTypeError";
  }
}
