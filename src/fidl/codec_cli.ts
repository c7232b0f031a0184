// `starnix-pager fidl encode|decode --type LIB/Type`: JSON on stdin -> wire bytes (the type's
// body, at rest, no transactional header) on stdout, and back. Handles cannot travel through a
// pipe: {"handle": N} stands for the N-th handle of the message (encode writes its presence
// marker; decode prints the handles in order of appearance as 0, 1, ...).
// JSON field names: the FIDL ones are canonical, camelCase ones are accepted (see json.ts).
// Exit status: 0 ok, 1 bad input, 2 usage error; each failure is one line on stderr.
import { FidlDecodeError, FidlEncodeError } from './errors';
import { Decoder, closeAll } from './decoder';
import { encodeValue } from './encoder';
import { fromJson, toJson } from './json';
import { FidlType } from './types';
import { Handle } from '../transport/handle';
import * as zx from '../gen/zx';
import * as runner from '../gen/fuchsia_starnix_runner';
import * as pager from '../gen/starnix_pager';

const LIBRARIES: Record<string, Readonly<Record<string, FidlType>>> = {
  [zx.LIBRARY_NAME]: zx.types,
  [runner.LIBRARY_NAME]: runner.types,
  [pager.LIBRARY_NAME]: pager.types,
};

const SYNOPSIS = 'starnix-pager fidl encode|decode --type LIB/Type';

/** The rest of `starnix-pager fidl --help`. */
export const CODEC_HELP = `  encode    JSON on stdin -> the wire bytes of the type's body on stdout (no transactional header)
  decode    those bytes on stdin -> JSON on stdout
  --type LIB/Type   e.g. fuchsia.starnix.runner/PagerRegisterFileRequest (the FIDL name, or the
                    generated one: Pager_RegisterFile_Result or PagerRegisterFileResult)
JSON: fields by their FIDL names (inode_num; camelCase inodeNum is accepted too), 64-bit integers
as strings ("8192"; a JSON number is accepted below 2^53), handles as {"handle": N} (the N-th
handle of the message), unions as {"tag": "member", "value": ...}, absent values as null.
Libraries: ${Object.keys(LIBRARIES).join(', ')}.`;

function usageLine(what: string): string {
  return `starnix-pager: fidl: ${what} (usage: ${SYNOPSIS}; see starnix-pager fidl --help)\n`;
}

/** A stand-in for a handle that is only a number: closing it closes nothing. */
export class HandleStandIn extends Handle {
  constructor(readonly id: number) {
    super(id);
  }
  override close(): void {
    if (this.valid) this.take();
  }
}

export interface CodecIo {
  stdout: { write(data: string | Uint8Array): unknown };
  stderr: { write(data: string): unknown };
}

/** Looks up "lib/Type" (FIDL name, e.g. Pager_RegisterFile_Result, or the generated one). */
export function lookupType(name: string): FidlType | undefined {
  const slash = name.lastIndexOf('/');
  if (slash < 0) return undefined;
  const types = LIBRARIES[name.slice(0, slash)];
  if (types === undefined) return undefined;
  const short = name.slice(slash + 1);
  if (Object.prototype.hasOwnProperty.call(types, short)) return types[short];
  const entry = Object.entries(types).find(([k]) => k.replace(/_/g, '') === short);
  return entry?.[1];
}

export function runCodecCommand(argv: string[], stdin: Buffer, out: CodecIo): number {
  const args = argv[0] === 'fidl' ? argv.slice(1) : argv;
  const verb = args[0];
  if (verb === '--help' || verb === '-h') {
    out.stdout.write(`usage: ${SYNOPSIS}\n\n${CODEC_HELP}\n`);
    return 0;
  }
  if (verb === undefined) {
    out.stderr.write(usageLine('missing encode or decode'));
    return 2;
  }
  if (verb !== 'encode' && verb !== 'decode') {
    out.stderr.write(usageLine(`"${verb}" is not encode or decode`));
    return 2;
  }
  let typeName: string | undefined;
  for (let i = 1; i < args.length; i++) {
    if (args[i] === '--type') {
      if (i + 1 >= args.length) {
        out.stderr.write(usageLine('--type needs a value'));
        return 2;
      }
      typeName = args[++i];
    } else if (args[i].startsWith('--type=')) typeName = args[i].slice('--type='.length);
    else {
      out.stderr.write(usageLine(`unexpected argument "${args[i]}"`));
      return 2;
    }
  }
  if (typeName === undefined) {
    out.stderr.write(usageLine('missing --type LIB/Type'));
    return 2;
  }
  const type = lookupType(typeName);
  if (type === undefined) {
    out.stderr.write(usageLine(`unknown type ${typeName} (libraries: ${Object.keys(LIBRARIES).join(', ')})`));
    return 2;
  }
  try {
    if (verb === 'encode') {
      let json: unknown;
      try {
        json = JSON.parse(stdin.toString('utf8'));
      } catch (e) {
        out.stderr.write(`starnix-pager: fidl: invalid JSON on stdin: ${(e as Error).message}\n`);
        return 1;
      }
      const value = fromJson(type, json as never, (n) => new HandleStandIn(n));
      out.stdout.write(encodeValue(type, value).bytes);
    } else {
      const bytes = new Uint8Array(stdin.buffer, stdin.byteOffset, stdin.byteLength);
      const value = decodeWithStandIns(type, bytes);
      out.stdout.write(`${JSON.stringify(toJson(type, value, (h) => (h as HandleStandIn).id))}\n`);
    }
    return 0;
  } catch (e) {
    if (e instanceof FidlDecodeError || e instanceof FidlEncodeError) {
      out.stderr.write(`starnix-pager: fidl: ${e.message}\n`);
      return 1;
    }
    out.stderr.write(`starnix-pager: fidl: ${(e as Error).message}\n`);
    return 1;
  }
}

/**
 * Decodes with as many handle stand-ins as the message refers to: a first pass with the
 * channel maximum counts them, a second pass checks the message with exactly that many.
 */
function decodeWithStandIns(type: FidlType, bytes: Uint8Array): unknown {
  const pool = Array.from({ length: 64 }, (_, i) => new HandleStandIn(i));
  const probe = new Decoder(bytes, pool, { handleCheck: null });
  try {
    if (bytes.length < type.size) throw new FidlDecodeError('too_short', `${bytes.length} bytes cannot hold a ${type.size}-byte object`);
    return probe.decodeTopLevel(type, 0);
  } catch (e) {
    if (!(e instanceof FidlDecodeError) || e.code !== 'extra_handles') throw e;
  }
  const exact = pool.slice(0, probe.handleIndex).map((h) => new HandleStandIn(h.id));
  try {
    return new Decoder(bytes, exact, { handleCheck: null }).decodeTopLevel(type, 0);
  } catch (e) {
    closeAll(exact);
    throw e;
  }
}
