// `starnix-pager inspect FILE [--json] [--connection N] [--method NAME]`: prints a FIDL record
// file (serve --record) as a conversation. Text by default, one JSON object per line with --json.
// A file cut short (a server that died mid-record, a full disk) prints every whole record, then
// says where it ends, and exits 1.
import * as fs from 'fs';
import { InspectFilter, InspectedMessage, formatMessage, inspectFile } from '../record/inspect';
import { CliError } from './errors';

export function cmdInspect(path: string, opts: InspectFilter & { json: boolean }, out: NodeJS.WritableStream): number {
  if (!fs.existsSync(path)) throw new CliError(`no such record file: ${path}`);
  let t0: number | undefined;
  let result;
  try {
    result = inspectFile(path, { connection: opts.connection, method: opts.method }, (m: InspectedMessage) => {
      t0 ??= m.t;
      out.write(opts.json ? `${JSON.stringify(m)}\n` : `${formatMessage(m, t0)}\n`);
    });
  } catch (e) {
    throw new CliError(`cannot read ${path}: ${(e as Error).message}`);
  }
  for (const note of result.notes) process.stderr.write(`starnix-pager: inspect: ${note}\n`);
  if (result.problem !== null) {
    throw new CliError(`${path}: byte ${result.problem.offset}: ${result.problem.message} (${result.messages} whole messages before it)`);
  }
  return 0;
}
