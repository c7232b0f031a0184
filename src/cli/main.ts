// starnix-pager: the command line. Parses arguments, runs one command, maps failures to exit
// codes: 0 success, 1 failure (one line saying what went wrong), 2 usage error.
import * as fs from 'fs';
import { parseArgs } from 'util';
import { runCodecCommand } from '../fidl/codec_cli';
import { setLogLevel } from '../log';
import { cmdCat, cmdLs, cmdMap, cmdServe, cmdStat, ServerFlags } from './commands';
import { cmdInspect } from './inspect_command';
import { CliError, UsageError } from './errors';
import { cmdSuspend, cmdThaw } from './suspend_command';

export const USAGE = `usage: starnix-pager COMMAND [OPTIONS]

  serve --svc-dir DIR [--log-level L] [--threads N] [--readahead fixed|adaptive] [--allow-uid UID]...
        Serve fuchsia.starnix.runner.Manager (and starnix.pager.Mapper) in DIR until SIGINT/SIGTERM.
        [--record FILE [--record-max-bytes N]]  record every FIDL message to FILE (MessagePack).
  inspect FILE [--json] [--connection N] [--method NAME]
        Print the FIDL conversation recorded in FILE, decoded.
  ls IMAGE [PATH]            List a directory of an ext4 image (default /).
  stat IMAGE PATH [--json]   Inode, type, size and extents of PATH.
  cat IMAGE PATH             Write PATH's bytes to stdout, paged in through the pager.
  map --backing FILE --block-size N --size S --extents L0-L1:P,... [--offset O] [--length L]
        Register one file against a backing file and write its paged bytes to stdout.
  suspend --cgroup DIR [--wake-after-ms MS] [--wake-on-stdin] [--wake-lock-after-ms MS] [--json]
        [--wake-timeout-ms MS]   Freeze the cgroup v2 DIR with SuspendContainer until a wake source
        fires: MS after it fell asleep, or a line on stdin (with none, it resumes at once, as
        upstream); print the time asleep and the reason.
  thaw --state-file FILE | --svc-dir DIR
        Thaw every cgroup a killed server left frozen (its ledger, DIR/.frozen-cgroups.json).
  fidl encode --type LIB/Type    JSON on stdin -> FIDL wire bytes of that type on stdout.
  fidl decode --type LIB/Type    FIDL wire bytes on stdin -> JSON on stdout.

  cat, map and suspend use an embedded in-process server unless --svc-dir DIR names a running one.
  Common options: --svc-dir DIR, --threads N, --readahead fixed|adaptive, --log-level error|warn|info|debug.
  Exit status: 0 success, 1 failure, 2 usage error.`;

const SERVER_OPTIONS = {
  'svc-dir': { type: 'string' },
  threads: { type: 'string' },
  readahead: { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function intArg(name: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${name} takes a whole number, not "${v}"`);
  const n = Number(v);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}`);
  return n;
}

function bigArg(name: string, v: string | undefined): bigint | undefined {
  if (v === undefined) return undefined;
  if (!/^(0x[0-9a-fA-F]+|\d+)$/.test(v)) throw new UsageError(`--${name} takes a whole number, not "${v}"`);
  return BigInt(v);
}

function serverFlags(values: Record<string, unknown>): ServerFlags {
  const readahead = values.readahead as string | undefined;
  if (readahead !== undefined && readahead !== 'fixed' && readahead !== 'adaptive') {
    throw new UsageError('--readahead is fixed or adaptive');
  }
  const level = values['log-level'] as string | undefined;
  if (level !== undefined) {
    if (!['error', 'warn', 'info', 'debug'].includes(level)) throw new UsageError('--log-level is error, warn, info or debug');
    setLogLevel(level);
  }
  return {
    svcDir: values['svc-dir'] as string | undefined,
    threads: intArg('threads', values.threads as string | undefined, 1, 64),
    readahead: readahead as ServerFlags['readahead'],
  };
}

function parse<T extends Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE + '\n');
      return command === undefined ? 2 : 0;
    case 'serve': {
      const { values, positionals } = parse(rest, {
        ...SERVER_OPTIONS,
        'allow-uid': { type: 'string', multiple: true },
        record: { type: 'string' },
        'record-max-bytes': { type: 'string' },
      });
      if (positionals.length > 0) throw new UsageError(`serve takes no arguments, got "${positionals[0]}"`);
      const allow = (values['allow-uid'] as string[] | undefined)?.map((u) => intArg('allow-uid', u, 0, 0xffffffff) as number);
      const recordMaxBytes = intArg('record-max-bytes', values['record-max-bytes'] as string | undefined, 1024, Number.MAX_SAFE_INTEGER);
      if (recordMaxBytes !== undefined && values.record === undefined) throw new UsageError('--record-max-bytes needs --record FILE');
      return cmdServe({ ...serverFlags(values), allowUids: allow, recordFile: values.record as string | undefined, recordMaxBytes });
    }
    case 'ls': {
      const { values, positionals } = parse(rest, SERVER_OPTIONS);
      serverFlags(values);
      if (positionals.length < 1 || positionals.length > 2) throw new UsageError('ls IMAGE [PATH]');
      return cmdLs(positionals[0], positionals[1] ?? '/', process.stdout);
    }
    case 'stat': {
      const { values, positionals } = parse(rest, { ...SERVER_OPTIONS, json: { type: 'boolean' } });
      serverFlags(values);
      if (positionals.length !== 2) throw new UsageError('stat IMAGE PATH');
      return cmdStat(positionals[0], positionals[1], process.stdout, Boolean(values.json));
    }
    case 'cat': {
      const { values, positionals } = parse(rest, SERVER_OPTIONS);
      if (positionals.length !== 2) throw new UsageError('cat IMAGE PATH');
      return cmdCat(positionals[0], positionals[1], serverFlags(values), process.stdout);
    }
    case 'map': {
      const { values, positionals } = parse(rest, {
        ...SERVER_OPTIONS,
        backing: { type: 'string' },
        'block-size': { type: 'string' },
        size: { type: 'string' },
        extents: { type: 'string' },
        offset: { type: 'string' },
        length: { type: 'string' },
        name: { type: 'string' },
        inode: { type: 'string' },
      });
      if (positionals.length > 0) throw new UsageError(`map takes options only, got "${positionals[0]}"`);
      const flags = serverFlags(values);
      const need = ['backing', 'block-size', 'size', 'extents'].filter((k) => values[k as keyof typeof values] === undefined);
      if (need.length > 0) throw new UsageError(`map needs ${need.map((k) => `--${k}`).join(', ')}`);
      return cmdMap(
        {
          backing: values.backing as string,
          blockSize: intArg('block-size', values['block-size'] as string, 1, 1 << 30) as number,
          size: bigArg('size', values.size as string) as bigint,
          extents: values.extents as string,
          offset: bigArg('offset', values.offset as string | undefined),
          length: bigArg('length', values.length as string | undefined),
          name: values.name as string | undefined,
          inode: intArg('inode', values.inode as string | undefined, 0, 0xffffffff),
        },
        flags,
        process.stdout,
      );
    }
    case 'suspend': {
      const { values, positionals } = parse(rest, {
        ...SERVER_OPTIONS,
        cgroup: { type: 'string' },
        'wake-after-ms': { type: 'string' },
        'wake-on-stdin': { type: 'boolean' },
        'wake-lock-after-ms': { type: 'string' },
        'wake-timeout-ms': { type: 'string' },
        json: { type: 'boolean' },
      });
      if (positionals.length > 0) throw new UsageError(`suspend takes options only, got "${positionals[0]}"`);
      const flags = serverFlags(values);
      if (values.cgroup === undefined) throw new UsageError('suspend needs --cgroup DIR');
      const ms = (name: string) => intArg(name, values[name as keyof typeof values] as string | undefined, 0, 24 * 3600 * 1000);
      if (values['wake-timeout-ms'] !== undefined && flags.svcDir !== undefined) {
        throw new UsageError('--wake-timeout-ms sets the embedded server\'s wait; a running server (--svc-dir) has its own');
      }
      return cmdSuspend(
        {
          cgroup: values.cgroup as string,
          svcDir: flags.svcDir,
          wakeAfterMs: ms('wake-after-ms'),
          wakeOnStdin: Boolean(values['wake-on-stdin']),
          wakeLockAfterMs: ms('wake-lock-after-ms'),
          wakeTimeoutMs: ms('wake-timeout-ms'),
          json: Boolean(values.json),
        },
        process.stdout,
        process.stderr,
      );
    }
    case 'thaw': {
      const { values, positionals } = parse(rest, { 'svc-dir': { type: 'string' }, 'state-file': { type: 'string' }, help: { type: 'boolean', short: 'h' } });
      if (positionals.length > 0) throw new UsageError(`thaw takes options only, got "${positionals[0]}"`);
      const file = (values['state-file'] as string | undefined) ?? (values['svc-dir'] !== undefined ? `${values['svc-dir'] as string}/.frozen-cgroups.json` : undefined);
      if (file === undefined) throw new UsageError('thaw needs --state-file FILE or --svc-dir DIR');
      return cmdThaw(file, process.stdout);
    }
    case 'inspect': {
      const { values, positionals } = parse(rest, {
        json: { type: 'boolean' },
        connection: { type: 'string' },
        method: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      });
      if (positionals.length !== 1) throw new UsageError('inspect FILE [--json] [--connection N] [--method NAME]');
      return cmdInspect(positionals[0], {
        json: Boolean(values.json),
        connection: intArg('connection', values.connection as string | undefined, 1, Number.MAX_SAFE_INTEGER),
        method: values.method as string | undefined,
      }, process.stdout);
    }
    case 'fidl': {
      const stdin = rest[0] === 'encode' || rest[0] === 'decode' ? readStdin() : Buffer.alloc(0);
      return runCodecCommand(rest, stdin, { stdout: process.stdout, stderr: process.stderr });
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

function readStdin(): Buffer {
  try {
    return fs.readFileSync(0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EAGAIN') throw new CliError('stdin is not readable here (non-blocking); pipe the input in');
    throw e;
  }
}

/** Runs the CLI; resolves to the exit status (the bin script sets process.exitCode). */
export async function main(argv: string[]): Promise<number> {
  try {
    return await run(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`starnix-pager: ${e.message}\n\n${USAGE}\n`);
      return 2;
    }
    if (e instanceof CliError) {
      process.stderr.write(`starnix-pager: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`starnix-pager: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    return 1;
  }
}
