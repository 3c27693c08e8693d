/**
 * Linux signal numbers (x86-64 and arm64 share them) as names ("SIGUSR1")
 * and as glibc's strsignal() words ("User defined signal 1"), which
 * libbpf-tools prints, plus the reverse lookup for `-s` flags.
 *
 * @example
 * ```ts
 * import { signalDescription, signalName, signalNumber } from "./signals.ts";
 * signalName(10); // "SIGUSR1"
 * signalDescription(11); // "Segmentation fault"
 * signalNumber("usr1"); // 10
 * ```
 *
 * @module
 */

/** Signal 1..31: name and glibc description. */
const SIGNALS: [name: string, description: string][] = [
  ["SIGHUP", "Hangup"],
  ["SIGINT", "Interrupt"],
  ["SIGQUIT", "Quit"],
  ["SIGILL", "Illegal instruction"],
  ["SIGTRAP", "Trace/breakpoint trap"],
  ["SIGABRT", "Aborted"],
  ["SIGBUS", "Bus error"],
  ["SIGFPE", "Floating point exception"],
  ["SIGKILL", "Killed"],
  ["SIGUSR1", "User defined signal 1"],
  ["SIGSEGV", "Segmentation fault"],
  ["SIGUSR2", "User defined signal 2"],
  ["SIGPIPE", "Broken pipe"],
  ["SIGALRM", "Alarm clock"],
  ["SIGTERM", "Terminated"],
  ["SIGSTKFLT", "Stack fault"],
  ["SIGCHLD", "Child exited"],
  ["SIGCONT", "Continued"],
  ["SIGSTOP", "Stopped (signal)"],
  ["SIGTSTP", "Stopped"],
  ["SIGTTIN", "Stopped (tty input)"],
  ["SIGTTOU", "Stopped (tty output)"],
  ["SIGURG", "Urgent I/O condition"],
  ["SIGXCPU", "CPU time limit exceeded"],
  ["SIGXFSZ", "File size limit exceeded"],
  ["SIGVTALRM", "Virtual timer expired"],
  ["SIGPROF", "Profiling timer expired"],
  ["SIGWINCH", "Window changed"],
  ["SIGIO", "I/O possible"],
  ["SIGPWR", "Power failure"],
  ["SIGSYS", "Bad system call"],
];

/** The kernel's largest signal number (_NSIG - 1). */
export const SIGNAL_MAX = 64;
/** glibc's SIGRTMIN (32 and 33 are kept by the thread library). */
const GLIBC_SIGRTMIN = 34;

/** "SIGUSR1" for 10; "SIGRTMIN+N" above 31 (as kill -l spells them from 34), "SIG32"/"SIG33". */
export function signalName(sig: number): string | undefined {
  if (sig >= 1 && sig <= 31) return SIGNALS[sig - 1][0];
  if (sig === 32 || sig === 33) return `SIG${sig}`;
  if (sig === GLIBC_SIGRTMIN) return "SIGRTMIN";
  if (sig === SIGNAL_MAX) return "SIGRTMAX";
  if (sig > GLIBC_SIGRTMIN && sig < SIGNAL_MAX) return `SIGRTMIN+${sig - GLIBC_SIGRTMIN}`;
  return undefined;
}

/** glibc's strsignal(sig): "Segmentation fault", "Real-time signal 2", "Unknown signal 0". */
export function signalDescription(sig: number): string {
  if (sig >= 1 && sig <= 31) return SIGNALS[sig - 1][1];
  if (sig >= GLIBC_SIGRTMIN && sig <= SIGNAL_MAX) {
    return `Real-time signal ${sig - GLIBC_SIGRTMIN}`;
  }
  return `Unknown signal ${sig}`;
}

/**
 * A signal given as a number ("10"), a name ("SIGUSR1", "usr1") or
 * "RTMIN+N": its number, or undefined when it names no signal.
 */
export function signalNumber(text: string): number | undefined {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    return n >= 1 && n <= SIGNAL_MAX ? n : undefined;
  }
  const name = text.toUpperCase().replace(/^SIG/, "");
  const i = SIGNALS.findIndex(([n]) => n === `SIG${name}`);
  if (i >= 0) return i + 1;
  const rt = /^RT(MIN|MAX)([+-]\d+)?$/.exec(name);
  if (rt) {
    const n = (rt[1] === "MIN" ? GLIBC_SIGRTMIN : SIGNAL_MAX) + Number(rt[2] ?? 0);
    return n >= GLIBC_SIGRTMIN && n <= SIGNAL_MAX ? n : undefined;
  }
  return undefined;
}
