// starnix-pager: the command line. Parses arguments, runs one command, maps failures to exit
// codes: 0 success, 1 failure, 2 usage error; each failure is one line on stderr starting with
// "starnix-pager:". Output to a closed pipe stops the command quietly (see errors.ts).
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import { CODEC_HELP, runCodecCommand } from '../fidl/codec_cli';
import { isLogLevel, logger, setLogLevel, setLogTimestamps } from '../log';
import { cmdCat, cmdLs, cmdMap, cmdServe, cmdStat, ServerFlags } from './commands';
import { BrokenPipe, CliError, EXIT_BROKEN_PIPE, isBrokenPipe, UsageError } from './errors';
// inspect_command is loaded by the inspect command only (it brings msgpackr): start-up of cat.
import type { cmdInspect as CmdInspect } from './inspect_command';
import { cmdSuspend, cmdThaw } from './suspend_command';

type OptionSpec = { type: 'string' | 'boolean'; short?: string; multiple?: boolean };

interface Command {
  /** One line: the command and its arguments. */
  synopsis: string;
  /** What it does, for the overview. */
  summary: string;
  /** The rest of `COMMAND --help`. */
  details: string;
}

const SERVER_OPTION_HELP = `  --svc-dir DIR          use the server serving DIR instead of an embedded in-process one
  --threads N            pager threads of the embedded server (default 2)
  --readahead MODE       fixed (the seed's 128 KiB) or adaptive (default)
  --huge-pages MODE      auto (default: 2 MiB huge pages for files of 64 MiB and more when the
                         pool has room), always (fail when it has not) or never
  --trace FILE           write a Perfetto trace of the embedded server to FILE (open it in ui.perfetto.dev)
  --log-level LEVEL      error, warn (default), info or debug (also STARNIX_PAGER_LOG)`;

const COMMANDS: Record<string, Command> = {
  serve: {
    synopsis: 'serve --svc-dir DIR [--threads N] [--readahead fixed|adaptive] [--huge-pages auto|always|never] [--allow-uid UID]... [--budget NAME=VALUE]... [--stop-timeout S] [--record FILE] [--trace FILE] [--log-level L]',
    summary: 'serve fuchsia.starnix.runner.Manager and starnix.pager.Mapper in DIR until SIGINT/SIGTERM',
    details: `Binds DIR/fuchsia.starnix.runner.Manager and DIR/starnix.pager.Mapper (DIR is created 0700)
and serves them until SIGINT or SIGTERM, then exits 0. Says at start-up what this process's
userfaultfd access allows. Logs counters every 10 s at info.

  --svc-dir DIR          the service directory (required)
  --threads N            pager threads per pager (default 2)
  --readahead MODE       fixed (the seed's 128 KiB) or adaptive (default)
  --huge-pages MODE      auto (default: 2 MiB huge pages for files of 64 MiB and more when the
                         pool has room; see the README's "Huge pages"), always (RegisterFile fails
                         with NO_RESOURCES when the pool lacks them) or never
  --allow-uid UID        only peers with this uid may connect (repeatable; default: anyone who can open the sockets)
  --budget NAME=VALUE    one of the server's budgets (fds, pagers, files, mappedBytes, attachedUffds,
                         wakeWatchers, queuedBytes, queuedHandles: whole numbers) or shares of them
                         (uidShare, connectionShare: fractions in (0, 1]); repeatable. Defaults come
                         from RLIMIT_NOFILE (see docs/hardening.md)
  --stop-timeout S       after SIGINT/SIGTERM, exit (status 1) if still running S seconds later (default 5)
  --record FILE          record every FIDL message to FILE (MessagePack; read it with inspect)
  --record-max-bytes N   stop recording once FILE holds N bytes
  --trace FILE           write a Perfetto trace of the server to FILE (open it in ui.perfetto.dev)
  --log-level LEVEL      error, warn (default), info or debug (also STARNIX_PAGER_LOG)`,
  },
  inspect: {
    synopsis: 'inspect FILE [--json] [--connection N] [--method NAME]',
    summary: 'print the FIDL conversation recorded by serve --record FILE, decoded',
    details: `  --json                 one JSON object per message
  --connection N         only connection N
  --method NAME          only messages of method NAME`,
  },
  ls: {
    synopsis: 'ls IMAGE [PATH]',
    summary: 'list a directory of an ext2/3/4 image (default /)',
    details: 'One line per entry: type, mode, inode, size, name (symlinks with their target).',
  },
  stat: {
    synopsis: 'stat IMAGE PATH [--json]',
    summary: 'inode, type, size and extents of PATH',
    details: `Extents are L0-L1:P, logical blocks [L0, L1) stored from physical block P on. For a regular
file, "pages:" says what --huge-pages auto would give it with the huge page pool as it is now.
  --json                 the same as JSON (64-bit numbers as strings)`,
  },
  cat: {
    synopsis: 'cat IMAGE PATH [--svc-dir DIR]',
    summary: "write PATH's bytes to stdout, paged in through the pager",
    details: `Every byte is read through a mapping whose pages the pager fills on first touch.
${SERVER_OPTION_HELP}`,
  },
  map: {
    synopsis: 'map --backing FILE --block-size N --size S --extents L0-L1:P,... [--offset O] [--length L] [--svc-dir DIR]',
    summary: 'register one file against a backing file and write its paged bytes',
    details: `For runner authors checking an extent list: the file of --size bytes whose logical blocks
[L0, L1) are at physical block P of FILE (holes read as zeros).
  --name NAME, --inode N the name and inode number to register (default "map", 1)
  --offset O, --length L write only [O, O+L) of the file
${SERVER_OPTION_HELP}`,
  },
  codegen: {
    synopsis: 'codegen FIDL_FILES... --out DIR [--runtime-import MODULE]',
    summary: 'compile .fidl files to TypeScript bindings (one module per library)',
    details: `The generated modules import the FIDL runtime from MODULE, by default 'starnix-pager/fidl'
(this package's public runtime), so they work in any project that depends on starnix-pager.
  --out DIR              where to write DIR/<library_name>.ts
  --runtime-import M     the module to import the runtime from (default starnix-pager/fidl)
  --ir                   the inputs are fidlc's JSON IR, not .fidl sources
Include fidl/zx.fidl from this package when a library uses zx.`,
  },
  suspend: {
    synopsis: 'suspend --cgroup DIR [--wake-after-ms MS] [--wake-on-stdin] [--wake-lock-after-ms MS] [--json] [--svc-dir DIR | --wake-timeout-ms MS]',
    summary: 'freeze a cgroup v2 directory through SuspendContainer until a wake source fires',
    details: `As a runner would: registers a wake watcher (says asleep and awake on stderr as the server
raises them), adds the wake sources asked for, suspends DIR (its processes stop: cgroup.freeze),
and prints how long it slept and what woke it. With no wake source it resumes at once (upstream's
rule); a running server (--svc-dir) or the embedded one wakes it after 9 s at most.
  --cgroup DIR           the container: a directory of a cgroup v2 file system (required)
  --wake-after-ms MS     wake it MS after it fell asleep (an eventfd wake source, "cli-timer")
  --wake-on-stdin        wake it when a line arrives on stdin (a socket wake source, "cli-stdin")
  --wake-lock-after-ms MS  raise the wake locks after MS: the suspend ends with WAKE_LOCKS_EXIST
  --wake-timeout-ms MS   the embedded server's longest wait for a wake source (default 9000)
  --json                 the result as one JSON object
  --svc-dir DIR          use the server serving DIR instead of an embedded in-process one
  --log-level LEVEL      error, warn (default), info or debug (also STARNIX_PAGER_LOG)`,
  },
  thaw: {
    synopsis: 'thaw --state-file FILE | --svc-dir DIR',
    summary: 'thaw every cgroup a killed server left frozen (its ledger)',
    details: `A server writes the cgroups it freezes to DIR/.frozen-cgroups.json and thaws them itself on
SIGTERM; after a SIGKILL the next server on DIR thaws them at start, and this does it by hand.
An entry is thawed only while its path still names the same cgroup, in the same boot.
  --state-file FILE      the ledger
  --svc-dir DIR          the ledger of the server serving DIR (DIR/.frozen-cgroups.json)`,
  },
  fidl: {
    synopsis: 'fidl encode|decode --type LIB/Type',
    summary: 'JSON on stdin -> FIDL wire bytes on stdout, and back',
    details: CODEC_HELP,
  },
};

const OVERVIEW = `usage: starnix-pager COMMAND [OPTIONS]

${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(7)} ${c.summary}`).join('\n')}

  starnix-pager COMMAND --help   that command's arguments and options
  starnix-pager --version        the version
  Exit status: 0 success, 1 failure, 2 usage error; a closed stdout ends a command quietly.`;

function commandHelp(name: string): string {
  const c = COMMANDS[name];
  return `usage: starnix-pager ${c.synopsis}\n\n${c.summary[0].toUpperCase()}${c.summary.slice(1)}.\n${c.details}\n`;
}

/** A usage error about `command`, in one line that also says where to look. */
function usage(command: string, what: string): UsageError {
  return new UsageError(`${command}: ${what} (usage: starnix-pager ${COMMANDS[command].synopsis}; see starnix-pager ${command} --help)`);
}

/** The package's version, from its package.json (two or three levels up: src/cli or dist/src/cli). */
export function version(): string {
  for (const up of [['..', '..'], ['..', '..', '..']]) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, ...up, 'package.json'), 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'starnix-pager') return pkg.version;
    } catch {
      /* not here: one more level up */
    }
  }
  return 'unknown';
}

const SERVER_OPTIONS = {
  'svc-dir': { type: 'string' },
  threads: { type: 'string' },
  readahead: { type: 'string' },
  'huge-pages': { type: 'string' },
  trace: { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const LOG_OPTIONS = {
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function intArg(command: string, name: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw usage(command, `--${name} takes a whole number, not "${v}"`);
  const n = Number(v);
  if (n < min || n > max) throw usage(command, `--${name} must be between ${min} and ${max}, not ${v}`);
  return n;
}

function bigArg(command: string, name: string, v: string | undefined): bigint | undefined {
  if (v === undefined) return undefined;
  if (!/^(0x[0-9a-fA-F]+|\d+)$/.test(v)) throw usage(command, `--${name} takes a whole number, not "${v}"`);
  return BigInt(v);
}

const BUDGET_NAMES = ['fds', 'pagers', 'files', 'mappedBytes', 'attachedUffds', 'wakeWatchers', 'queuedBytes', 'queuedHandles'];
const SHARE_NAMES = ['uidShare', 'connectionShare'];

/** --budget NAME=VALUE...: whole numbers for budgets, fractions in (0, 1] for shares. */
function budgetArgs(command: string, items: string[] | undefined): Record<string, number> | undefined {
  if (items === undefined) return undefined;
  const out: Record<string, number> = {};
  for (const item of items) {
    const m = /^([A-Za-z]+)=(.+)$/.exec(item);
    if (m === null) throw usage(command, `--budget takes NAME=VALUE, not "${item}"`);
    const [, name, value] = m;
    if (BUDGET_NAMES.includes(name)) {
      if (!/^\d+$/.test(value) || Number(value) < 1) throw usage(command, `--budget ${name} takes a whole number of at least 1, not "${value}"`);
      out[name] = Number(value);
    } else if (SHARE_NAMES.includes(name)) {
      const f = Number(value);
      if (!(f > 0 && f <= 1)) throw usage(command, `--budget ${name} takes a fraction in (0, 1], not "${value}"`);
      out[name] = f;
    } else {
      throw usage(command, `--budget: no budget named "${name}" (one of ${[...BUDGET_NAMES, ...SHARE_NAMES].join(', ')})`);
    }
  }
  return out;
}

function applyLogLevel(command: string, values: Record<string, unknown>): void {
  const level = values['log-level'] as string | undefined;
  if (level === undefined) return;
  if (!isLogLevel(level)) throw usage(command, `--log-level is error, warn, info or debug, not "${level}"`);
  setLogLevel(level);
}

function serverFlags(command: string, values: Record<string, unknown>): ServerFlags {
  const readahead = values.readahead as string | undefined;
  if (readahead !== undefined && readahead !== 'fixed' && readahead !== 'adaptive') {
    throw usage(command, `--readahead is fixed or adaptive, not "${readahead}"`);
  }
  const hugePages = values['huge-pages'] as string | undefined;
  if (hugePages !== undefined && !['auto', 'always', 'never'].includes(hugePages)) {
    throw usage(command, `--huge-pages is auto, always or never, not "${hugePages}"`);
  }
  applyLogLevel(command, values);
  return {
    svcDir: values['svc-dir'] as string | undefined,
    threads: intArg(command, 'threads', values.threads as string | undefined, 1, 64),
    readahead: readahead as ServerFlags['readahead'],
    hugePages: hugePages as ServerFlags['hugePages'],
    traceFile: values.trace as string | undefined,
    // At info and debug the user watches the server's lines as they come; at warn and error an
    // embedded server's refusal becomes the detail of the command's one-line error.
    captureServerLogs: !logger.isLevelEnabled('info'),
  };
}

/**
 * getopt's rule for an option that takes a value: the next argument is its value even when it
 * starts with '-' (`--size -5`), unless it is itself one of the command's options. util.parseArgs
 * refuses such values as ambiguous; joining them as `--size=-5` lets the value's own check speak.
 */
function joinDashValues(args: string[], options: Record<string, OptionSpec>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const name = a.startsWith('--') ? a.slice(2) : null;
    const next = args[i + 1];
    if (name !== null && options[name]?.type === 'string' && next !== undefined && next.startsWith('-') && next !== '--') {
      const nextName = next.startsWith('--') ? next.slice(2).split('=')[0] : null;
      const isOption = nextName !== null ? nextName in options : Object.values(options).some((o) => o.short === next.slice(1));
      if (!isOption) {
        out.push(`${a}=${next}`);
        i++;
        continue;
      }
    }
    out.push(a);
  }
  return out;
}

function parse<T extends Record<string, OptionSpec>>(command: string, args: string[], options: T) {
  try {
    return parseArgs({ args: joinDashValues(args, options), options, allowPositionals: true, strict: true });
  } catch (e) {
    // util.parseArgs's messages run to three lines; say the same in a few words.
    const err = e as NodeJS.ErrnoException;
    const quoted = /'([^']+)'/.exec(err.message)?.[1] ?? '';
    switch (err.code) {
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
        throw usage(command, `unknown option ${quoted}`);
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
        const option = quoted.split(' ')[0];
        throw usage(command, options[option.replace(/^-+/, '')]?.type === 'boolean' ? `${option} takes no value` : `${option} needs a value`);
      }
      default:
        throw usage(command, err.message.split('\n')[0]);
    }
  }
}

/** Checks the positional arguments against `names` (the optional ones in [brackets]). */
function positionals(command: string, got: string[], names: string[]): string[] {
  const required = names.filter((n) => !n.startsWith('['));
  if (got.length < required.length) {
    const missing = required.slice(got.length);
    throw usage(command, `missing ${missing.join(' and ')}`);
  }
  if (got.length > names.length) throw usage(command, `unexpected argument "${got[names.length]}"`);
  return got;
}

function wantsHelp(args: string[]): boolean {
  const beforeDashDash = args.indexOf('--') < 0 ? args : args.slice(0, args.indexOf('--'));
  return beforeDashDash.includes('--help') || beforeDashDash.includes('-h');
}

async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError('no command given (see starnix-pager --help)');
  if (command === 'help' || command === '--help' || command === '-h') {
    const topic = rest[0];
    if (topic !== undefined && topic in COMMANDS) process.stdout.write(commandHelp(topic));
    else process.stdout.write(OVERVIEW + '\n');
    return 0;
  }
  if (command === '--version' || command === '-V' || command === 'version') {
    process.stdout.write(`starnix-pager ${version()}\n`);
    return 0;
  }
  if (!(command in COMMANDS)) throw new UsageError(`unknown command "${command}" (commands: ${Object.keys(COMMANDS).join(', ')}; see starnix-pager --help)`);
  if (wantsHelp(rest)) {
    process.stdout.write(commandHelp(command));
    return 0;
  }
  switch (command) {
    case 'serve': {
      const { values, positionals: pos } = parse(command, rest, {
        ...SERVER_OPTIONS,
        'allow-uid': { type: 'string', multiple: true },
        budget: { type: 'string', multiple: true },
        'stop-timeout': { type: 'string' },
        record: { type: 'string' },
        'record-max-bytes': { type: 'string' },
      });
      positionals(command, pos, []);
      if (values['svc-dir'] === undefined) throw usage(command, 'missing --svc-dir DIR');
      const allow = (values['allow-uid'] as string[] | undefined)?.map((u) => intArg(command, 'allow-uid', u, 0, 0xffffffff) as number);
      const recordMaxBytes = intArg(command, 'record-max-bytes', values['record-max-bytes'] as string | undefined, 1024, Number.MAX_SAFE_INTEGER);
      if (recordMaxBytes !== undefined && values.record === undefined) throw usage(command, '--record-max-bytes needs --record FILE');
      setLogTimestamps(true);
      const budget = budgetArgs(command, values.budget as string[] | undefined);
      const stopTimeoutSeconds = intArg(command, 'stop-timeout', values['stop-timeout'] as string | undefined, 1, 3600);
      return cmdServe({ ...serverFlags(command, values), allowUids: allow, recordFile: values.record as string | undefined, recordMaxBytes, budget, stopTimeoutSeconds });
    }
    case 'ls': {
      const { values, positionals: pos } = parse(command, rest, LOG_OPTIONS);
      applyLogLevel(command, values);
      const [image, p] = positionals(command, pos, ['IMAGE', '[PATH]']);
      return cmdLs(image, p ?? '/', process.stdout);
    }
    case 'stat': {
      const { values, positionals: pos } = parse(command, rest, { ...LOG_OPTIONS, json: { type: 'boolean' } });
      applyLogLevel(command, values);
      const [image, p] = positionals(command, pos, ['IMAGE', 'PATH']);
      return cmdStat(image, p, process.stdout, Boolean(values.json));
    }
    case 'cat': {
      const { values, positionals: pos } = parse(command, rest, SERVER_OPTIONS);
      const flags = serverFlags(command, values);
      const [image, p] = positionals(command, pos, ['IMAGE', 'PATH']);
      return cmdCat(image, p, flags, process.stdout);
    }
    case 'map': {
      const { values, positionals: pos } = parse(command, rest, {
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
      positionals(command, pos, []);
      const flags = serverFlags(command, values);
      // Values given are checked first: `--size -5` is wrong whatever else is missing.
      const args = {
        backing: values.backing as string,
        blockSize: intArg(command, 'block-size', values['block-size'] as string | undefined, 1, 1 << 30) as number,
        size: bigArg(command, 'size', values.size as string | undefined) as bigint,
        extents: values.extents as string,
        offset: bigArg(command, 'offset', values.offset as string | undefined),
        length: bigArg(command, 'length', values.length as string | undefined),
        name: values.name as string | undefined,
        inode: intArg(command, 'inode', values.inode as string | undefined, 0, 0xffffffff),
      };
      const need = ['backing', 'block-size', 'size', 'extents'].filter((k) => values[k as keyof typeof values] === undefined);
      if (need.length > 0) throw usage(command, `needs ${need.map((k) => `--${k}`).join(', ')}`);
      return cmdMap(args, flags, process.stdout);
    }
    case 'inspect': {
      const { values, positionals: pos } = parse(command, rest, {
        json: { type: 'boolean' },
        connection: { type: 'string' },
        method: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      });
      const [file] = positionals(command, pos, ['FILE']);
      const { cmdInspect } = require('./inspect_command') as { cmdInspect: typeof CmdInspect };
      return cmdInspect(file, {
        json: Boolean(values.json),
        connection: intArg(command, 'connection', values.connection as string | undefined, 1, Number.MAX_SAFE_INTEGER),
        method: values.method as string | undefined,
      }, process.stdout);
    }
    case 'codegen':
      return runCodegenCommand(rest);
    case 'suspend': {
      const { values, positionals: pos } = parse(command, rest, {
        ...LOG_OPTIONS,
        'svc-dir': { type: 'string' },
        cgroup: { type: 'string' },
        'wake-after-ms': { type: 'string' },
        'wake-on-stdin': { type: 'boolean' },
        'wake-lock-after-ms': { type: 'string' },
        'wake-timeout-ms': { type: 'string' },
        json: { type: 'boolean' },
      });
      applyLogLevel(command, values);
      positionals(command, pos, []);
      const ms = (name: string) => intArg(command, name, values[name as keyof typeof values] as string | undefined, 0, 24 * 3600 * 1000);
      const flags = {
        cgroup: values.cgroup as string,
        svcDir: values['svc-dir'] as string | undefined,
        wakeAfterMs: ms('wake-after-ms'),
        wakeOnStdin: Boolean(values['wake-on-stdin']),
        wakeLockAfterMs: ms('wake-lock-after-ms'),
        wakeTimeoutMs: ms('wake-timeout-ms'),
        json: Boolean(values.json),
      };
      if (values.cgroup === undefined) throw usage(command, 'missing --cgroup DIR');
      if (flags.wakeTimeoutMs !== undefined && flags.svcDir !== undefined) {
        throw usage(command, "--wake-timeout-ms sets the embedded server's wait; a running server (--svc-dir) has its own");
      }
      return cmdSuspend(flags, process.stdout, process.stderr);
    }
    case 'thaw': {
      const { values, positionals: pos } = parse(command, rest, { ...LOG_OPTIONS, 'svc-dir': { type: 'string' }, 'state-file': { type: 'string' } });
      applyLogLevel(command, values);
      positionals(command, pos, []);
      const svcDir = values['svc-dir'] as string | undefined;
      const file = (values['state-file'] as string | undefined) ?? (svcDir !== undefined ? path.join(svcDir, '.frozen-cgroups.json') : undefined);
      if (file === undefined) throw usage(command, 'needs --state-file FILE or --svc-dir DIR');
      return cmdThaw(file, process.stdout);
    }
    case 'fidl': {
      const stdin = rest[0] === 'encode' || rest[0] === 'decode' ? readStdin() : Buffer.alloc(0);
      const code = runCodecCommand(rest, stdin, { stdout: process.stdout, stderr: process.stderr });
      return code;
    }
    default:
      throw new Error(`command ${command} has no case`);
  }
}

/** The FIDL compiler (codegen/cli.ts), its messages in this CLI's one-line form. */
async function runCodegenCommand(args: string[]): Promise<number> {
  const { runCodegen } = await import('../../codegen/cli');
  let errors = '';
  const code = runCodegen(args, { stdout: process.stdout, stderr: { write: (s: string) => (errors += s) } });
  const lines = errors.split('\n').filter((l) => l !== '' && !/^\s*(usage: |starnix-pager codegen )/.test(l));
  if (code === 2) throw usage('codegen', lines[0] ?? 'needs FIDL_FILES... and --out DIR');
  for (const l of lines) process.stderr.write(`starnix-pager: codegen: ${l}\n`);
  return code;
}

function readStdin(): Buffer {
  try {
    return fs.readFileSync(0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EAGAIN') throw new CliError('stdin is not readable here (non-blocking); pipe the input in');
    throw e;
  }
}

/**
 * Watches stdout for its reader going away. Writes to a pipe report EPIPE as an 'error' event
 * (unhandled, it kills the process with a stack trace); here it only marks the pipe broken.
 */
function watchStdout(): { broken: () => boolean; flush: () => Promise<void> } {
  let broken = false;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') broken = true;
    else process.stderr.write(`starnix-pager: cannot write to stdout: ${e.message}\n`);
  });
  const flush = () =>
    new Promise<void>((resolve) => {
      if (process.stdout.destroyed) return resolve();
      process.stdout.write('', () => resolve());
    });
  return { broken: () => broken || (process.stdout.destroyed && process.stdout.errored !== null), flush };
}

/** Runs the CLI; resolves to the exit status (the bin script sets process.exitCode). */
export async function main(argv: string[]): Promise<number> {
  setLogTimestamps(false); // one-shot commands; serve turns them back on
  const stdout = watchStdout();
  let code: number;
  try {
    code = await run(argv);
  } catch (e) {
    if (isBrokenPipe(e)) {
      code = EXIT_BROKEN_PIPE;
    } else if (e instanceof UsageError) {
      process.stderr.write(`starnix-pager: ${e.message}\n`);
      return 2;
    } else if (e instanceof CliError) {
      process.stderr.write(`starnix-pager: ${e.message}\n`);
      code = 1;
    } else {
      // A bug of ours: the first line says what; the stack follows for the report.
      process.stderr.write(`starnix-pager: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
      code = 1;
    }
  }
  await stdout.flush();
  return stdout.broken() ? EXIT_BROKEN_PIPE : code;
}

export { BrokenPipe, EXIT_BROKEN_PIPE };
