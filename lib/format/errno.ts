/**
 * errno names (Linux, asm-generic: x86-64 and arm64 share them), for flags
 * that take an error as a number or a name (syscount -e ENOENT).
 *
 * @example
 * ```ts
 * import { errnoName, errnoNumber } from "./errno.ts";
 * errnoNumber("ENOENT"); // 2
 * errnoName(13); // "EACCES"
 * ```
 *
 * @module
 */

/** Names by number from 1 ("-": none). */
const NAMES = `
  EPERM ENOENT ESRCH EINTR EIO ENXIO E2BIG ENOEXEC EBADF ECHILD EAGAIN ENOMEM EACCES EFAULT
  ENOTBLK EBUSY EEXIST EXDEV ENODEV ENOTDIR EISDIR EINVAL ENFILE EMFILE ENOTTY ETXTBSY EFBIG
  ENOSPC ESPIPE EROFS EMLINK EPIPE EDOM ERANGE EDEADLK ENAMETOOLONG ENOLCK ENOSYS ENOTEMPTY
  ELOOP - ENOMSG EIDRM ECHRNG EL2NSYNC EL3HLT EL3RST ELNRNG EUNATCH ENOCSI EL2HLT EBADE EBADR
  EXFULL ENOANO EBADRQC EBADSLT - EBFONT ENOSTR ENODATA ETIME ENOSR ENONET ENOPKG EREMOTE
  ENOLINK EADV ESRMNT ECOMM EPROTO EMULTIHOP EDOTDOT EBADMSG EOVERFLOW ENOTUNIQ EBADFD EREMCHG
  ELIBACC ELIBBAD ELIBSCN ELIBMAX ELIBEXEC EILSEQ ERESTART ESTRPIPE EUSERS ENOTSOCK EDESTADDRREQ
  EMSGSIZE EPROTOTYPE ENOPROTOOPT EPROTONOSUPPORT ESOCKTNOSUPPORT EOPNOTSUPP EPFNOSUPPORT
  EAFNOSUPPORT EADDRINUSE EADDRNOTAVAIL ENETDOWN ENETUNREACH ENETRESET ECONNABORTED ECONNRESET
  ENOBUFS EISCONN ENOTCONN ESHUTDOWN ETOOMANYREFS ETIMEDOUT ECONNREFUSED EHOSTDOWN EHOSTUNREACH
  EALREADY EINPROGRESS ESTALE EUCLEAN ENOTNAM ENAVAIL EISNAM EREMOTEIO EDQUOT ENOMEDIUM
  EMEDIUMTYPE ECANCELED ENOKEY EKEYEXPIRED EKEYREVOKED EKEYREJECTED EOWNERDEAD ENOTRECOVERABLE
  ERFKILL EHWPOISON
`.split(/\s+/).filter((w) => w !== "");

/** Other spellings of the same numbers. */
const ALIASES: Record<string, number> = { EWOULDBLOCK: 11, EDEADLOCK: 35 };

/** The largest errno named here. */
export const ERRNO_MAX = NAMES.length;

/** "ENOENT" for 2, or undefined. */
export function errnoName(n: number): string | undefined {
  const name = NAMES[n - 1];
  return name && name !== "-" ? name : undefined;
}

/** The number of an errno name ("ENOENT", "enoent"), or undefined. */
export function errnoNumber(name: string): number | undefined {
  const upper = name.toUpperCase();
  if (upper in ALIASES) return ALIASES[upper];
  const i = NAMES.indexOf(upper);
  return i >= 0 && upper !== "-" ? i + 1 : undefined;
}
