/** Errors raised by the kernel layer. Each message is one line an operator can act on. */

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  7: "E2BIG",
  9: "EBADF",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  22: "EINVAL",
  24: "EMFILE",
  28: "ENOSPC",
  38: "ENOSYS",
  95: "EOPNOTSUPP",
  524: "ENOTSUPP",
};

/** `EINVAL` for 22, `errno 300` for what the table lacks. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

/** A kernel call failed: `what` names the operation, `errno` is positive. */
export class BpfError extends Error {
  /** `hint`, when given, follows the errno name in parentheses. */
  constructor(readonly what: string, readonly errno: number, hint?: string) {
    super(`${what}: ${errnoName(errno)}${hint ? ` (${hint})` : ""}`);
    this.name = "BpfError";
  }
}

/** The kernel verifier rejected a program; `log` is the verifier's own log. */
export class BpfLoadError extends BpfError {
  /** The message ends with the log's last line, usually the reason. */
  constructor(readonly program: string, errno: number, readonly log: string) {
    super(`loading BPF program ${program} failed`, errno, lastLogLine(log));
    this.name = "BpfLoadError";
  }
}

/** A kernel feature a tool needs is absent: the message says which. */
export class FeatureMissingError extends Error {
  /** `message` says which feature is missing and, ideally, what provides it. */
  constructor(message: string) {
    super(message);
    this.name = "FeatureMissingError";
  }
}

/** Missing privilege (not root, or no CAP_BPF/CAP_PERFMON). */
export class PermissionError extends Error {
  /** `message` says which privilege is missing. */
  constructor(message: string) {
    super(message);
    this.name = "PermissionError";
  }
}

function lastLogLine(log: string): string | undefined {
  const lines = log.split("\n").map((l) => l.trim()).filter((l) =>
    l && !l.startsWith("processed ") && !l.startsWith("verification time")
  );
  return lines.at(-1);
}
