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
