/**
 * What `deadbolt` exits with, one code per outcome a script may want to tell apart. The README
 * lists them too; they never change meaning.
 */
export const ExitCode = {
  /** The command did what it was asked (a `list` that found nothing included). */
  ok: 0,
  /** The command line was wrong: an unknown command or option, a missing key, no backend given. */
  usage: 1,
  /** The backend could not be reached or failed: refused connection, bad password, no table. */
  backend: 2,
  /** `inspect`: the key is not locked. `release`: it held nothing to release. */
  notFound: 3,
  /** `release`: the confirmation was declined (an answer other than yes, Ctrl-C or Ctrl-D). */
  aborted: 4,
  /** Interrupted with Ctrl-C (SIGINT) before it finished; `watch` ends with 0 instead. */
  interrupted: 130,
} as const;

/** One of the {@link ExitCode} values. */
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
