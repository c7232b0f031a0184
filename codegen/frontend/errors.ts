// Typed errors of the FIDL front end. Both carry the file, line and column (one-based)
// so tools can point at the offending source, and a message that reads on its own.

export interface SourceLocation {
  filename: string;
  line: number;
  column: number;
  /** Length in bytes of the offending span (0 if unknown). */
  length: number;
}

function where(loc: SourceLocation): string {
  return `${loc.filename}:${loc.line}:${loc.column}`;
}

/** The source text does not follow the FIDL grammar (lexing or parsing). */
export class FidlSyntaxError extends Error {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  constructor(readonly location: SourceLocation, readonly detail: string) {
    super(`${where(location)}: error: ${detail}`);
    this.name = 'FidlSyntaxError';
    this.file = location.filename;
    this.line = location.line;
    this.column = location.column;
  }
}

/** What kind of semantic error a FidlCompileError is, so callers and tests can tell them apart. */
export type CompileErrorKind =
  | 'undefined-name'
  | 'duplicate-name'
  | 'duplicate-ordinal'
  | 'duplicate-member-ordinal'
  | 'resource-in-value-type'
  | 'bad-constraint'
  | 'bad-type'
  | 'bad-constant'
  | 'include-cycle'
  | 'bad-library'
  | 'availability'
  | 'bad-modifier'
  | 'bad-attribute';

/** The source parses but does not compile (names, ordinals, resourceness, constraints, cycles). */
export class FidlCompileError extends Error {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  constructor(readonly kind: CompileErrorKind, readonly location: SourceLocation, readonly detail: string) {
    super(`${where(location)}: error: ${detail} [${kind}]`);
    this.name = 'FidlCompileError';
    this.file = location.filename;
    this.line = location.line;
    this.column = location.column;
  }
}
