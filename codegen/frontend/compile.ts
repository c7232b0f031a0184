// Entry point of the FIDL front end: .fidl files in, one fidlc-schema IR per library out.
import type { IrRoot } from '../ir';

/**
 * Compile the given .fidl files. Files are grouped by their `library` declaration; the result
 * holds one IR per library, dependencies before the libraries that use them.
 * Throws FidlSyntaxError or FidlCompileError (codegen/frontend/errors.ts) on bad input.
 */
export function compileLibraries(files: string[]): IrRoot[] {
  // Implementation lands in the next commit; this placeholder only fixes the signature.
  throw new Error(`compileLibraries: not implemented yet (called with ${files.length} files)`);
}
