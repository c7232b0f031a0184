// How the CLI fails: a UsageError exits 2, a CliError exits 1; both print one line.
// A closed stdout (`| head`) is neither: the command stops quietly, as a Unix tool killed by
// SIGPIPE does (the bin script ends the process with that signal: status 141 in a shell).
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

/** The reader of stdout went away: stop writing, say nothing. */
export class BrokenPipe extends Error {
  constructor() {
    super('stdout was closed by its reader');
    this.name = 'BrokenPipe';
  }
}

/** The exit status main() returns for a broken pipe; the bin script turns it into SIGPIPE. */
export const EXIT_BROKEN_PIPE = 141;

export function isBrokenPipe(e: unknown): boolean {
  return e instanceof BrokenPipe || (e as NodeJS.ErrnoException | null)?.code === 'EPIPE';
}
