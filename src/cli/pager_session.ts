// What the reading commands share: a connection to a server (a running one with --svc-dir, or an
// embedded in-process one by default), and streaming a file's paged bytes to an output.
import * as fs from 'fs';
import { FileMapping, FileRegistration, PagerClientConnection, RemotePager } from '../client';
import { LogCapture, logger } from '../log';
import { EmbeddedService } from '../server/service';
import { ServiceDirError } from '../transport/service_dir';
import type { ServerFlags } from './commands';
import { BrokenPipe, CliError, UsageError } from './errors';
import { Progress } from './progress';

/** Reads go through the mapping in chunks this large (each a few read-ahead windows). */
const CHUNK = 4 * 1024 * 1024;
/** Written straight from the mapping this much per call (the progress bar moves per call). */
const WRITE_CHUNK = 64 * 1024 * 1024;

export class PagerSession {
  private reported: number | null = null;
  private signalHandlers: [NodeJS.Signals, (sig: NodeJS.Signals) => void][] = [];

  private constructor(
    readonly connection: PagerClientConnection,
    private readonly embedded: EmbeddedService | null,
    private readonly capture: LogCapture | null,
  ) {}

  /** A running server's (--svc-dir), or an embedded in-process one's. */
  static open(flags: ServerFlags): PagerSession {
    if (flags.svcDir === undefined) {
      const capture = flags.captureServerLogs ? new LogCapture('warn') : null;
      try {
        let embedded: EmbeddedService;
        try {
          embedded = EmbeddedService.start({ threads: flags.threads, readahead: flags.readahead, hugePages: flags.hugePages, traceFile: flags.traceFile });
        } catch (e) {
          throw new CliError(`cannot start the embedded server: ${(e as Error).message}`);
        }
        try {
          const session = new PagerSession(PagerClientConnection.connect(embedded.svcDir), embedded, capture);
          if (flags.traceFile !== undefined) session.closeOnSignal();
          return session;
        } catch (e) {
          embedded.close();
          throw e;
        }
      } catch (e) {
        capture?.stop();
        throw e;
      }
    }
    if (flags.traceFile !== undefined) {
      throw new UsageError('--trace traces the embedded server; trace a running one with its own serve --trace');
    }
    try {
      return new PagerSession(PagerClientConnection.connect(flags.svcDir), null, null);
    } catch (e) {
      if (e instanceof ServiceDirError) throw new CliError(`server unreachable: ${e.message}`);
      throw e;
    }
  }

  /** What the embedded server last warned about (why it refused a request), if it did. */
  refusal(): string | undefined {
    const events = this.capture?.events ?? [];
    if (events.length === 0) return undefined;
    this.reported = events.length - 1;
    return events[this.reported].message;
  }

  /** CreatePager over the image file at `imagePath` (its fd travels to the server). */
  createPager(imagePath: string, blockSize: number): RemotePager {
    let fd: number;
    try {
      fd = fs.openSync(imagePath, 'r');
    } catch (e) {
      throw new CliError(`cannot open ${imagePath}: ${(e as Error).message}`);
    }
    return this.connection.createPager(fd, blockSize);
  }

  /** Closes the connection and the embedded server; then prints, one line each, the server's
   *  warnings that did not become part of an error (when the log level shows warnings). */
  /**
   * SIGINT/SIGTERM close the session first (so that the trace is finished), then the signal is
   * raised again with no handler left: the process dies of it, as it would have.
   */
  private closeOnSignal(): void {
    const onSignal = (sig: NodeJS.Signals) => {
      this.close();
      process.kill(process.pid, sig);
    };
    this.signalHandlers = [['SIGINT', onSignal], ['SIGTERM', onSignal]];
    for (const [sig, h] of this.signalHandlers) process.once(sig, h);
  }

  close(): void {
    for (const [sig, h] of this.signalHandlers) process.removeListener(sig, h);
    this.signalHandlers = [];
    this.connection.close();
    this.embedded?.close();
    if (this.capture === null) return;
    this.capture.stop();
    if (!logger.isLevelEnabled('warn')) return;
    this.capture.events.forEach((ev, i) => {
      if (i !== this.reported) process.stderr.write(`starnix-pager: ${ev.level}: ${ev.line}\n`);
    });
  }
}

/** Writes to a stream, waiting when it asks us to (a slow pipe must not make us buffer the file). */
export async function writeAll(out: NodeJS.WritableStream, buf: Uint8Array): Promise<void> {
  if ((out as { destroyed?: boolean }).destroyed) throw new BrokenPipe();
  if (buf.length === 0) return;
  if (!out.write(buf)) await new Promise<void>((resolve, reject) => {
    const onDrain = () => { out.off('error', onError); resolve(); };
    const onError = (e: Error) => { out.off('drain', onDrain); reject(e); };
    out.once('drain', onDrain);
    out.once('error', onError);
  });
}

/** The reader of the output went away (a closed pipe). */
function isClosedOutput(e: unknown): boolean {
  const err = e as NodeJS.ErrnoException;
  return err?.code === 'EPIPE' && err.syscall === 'write';
}

/**
 * Registers the file with `pager`, maps it and streams [offset, offset+length) of it to `out`.
 * Every byte comes through the mapping, so through the pager's page faults. An output with a file
 * descriptor (stdout: a file, a pipe, /dev/null) is written with write(2) straight from the mapping
 * (FileMapping.writeTo: no buffer, no copy here: what `cat` and `map` do with stdout). Any other
 * stream gets a new buffer per chunk (readAsync), since a stream may keep what it was given. If the
 * output is a pipe whose reader went away, streaming stops with a BrokenPipe (which the CLI ends
 * quietly with). Returns the bytes written.
 */
export async function streamFile(
  pager: RemotePager,
  reg: FileRegistration,
  out: NodeJS.WritableStream,
  range: { offset?: bigint; length?: bigint } = {},
): Promise<bigint> {
  const file = await pager.registerFile(reg);
  let mapping: FileMapping | null = null;
  try {
    mapping = await file.map();
    logger.info('mapped', { file: reg.name, pages: mapping.pageSize === 4096 ? '4 KiB' : `${mapping.pageSize >> 20} MiB huge pages` });
    const start = range.offset ?? 0n;
    const end = range.length === undefined ? reg.size : start + range.length > reg.size ? reg.size : start + range.length;
    if (start > reg.size) throw new CliError(`offset ${start} is past the end of the file (${reg.size} bytes)`);
    const progress = new Progress(Number(end - start), reg.name);
    const fd = (out as { fd?: unknown }).fd;
    const failed = (at: bigint, n: number, e: unknown): CliError => {
      const code = (e as NodeJS.ErrnoException).code;
      return new CliError(`read of ${reg.name} failed at bytes ${at}..${at + BigInt(n)}: ${code ?? ''} ${(e as Error).message}`.trim());
    };
    let at = start;
    try {
      if (typeof fd === 'number') {
        for (; at < end; ) {
          const n = Number(end - at < BigInt(WRITE_CHUNK) ? end - at : BigInt(WRITE_CHUNK));
          try {
            await mapping.writeTo(fd, at, n);
          } catch (e) {
            if (isClosedOutput(e)) throw e;
            const written = (e as { bytesWritten?: number }).bytesWritten ?? 0;
            if ((e as NodeJS.ErrnoException).syscall === 'write') throw new CliError(`writing the output: ${(e as Error).message}`);
            throw failed(at + BigInt(written), Math.min(n - written, 4096), e);
          }
          progress.advance(n);
          at += BigInt(n);
        }
      } else {
        // A stream may keep what it is given past its write callback (a PassThrough hands the same
        // buffer on), so here each chunk is a new buffer: no reuse on this path.
        for (; at < end; ) {
          const n = Number(end - at < BigInt(CHUNK) ? end - at : BigInt(CHUNK));
          let buf: Buffer;
          try {
            buf = await mapping.readAsync(at, n);
          } catch (e) {
            throw failed(at, n, e);
          }
          await writeAll(out, buf);
          progress.advance(n);
          at += BigInt(n);
        }
      }
    } catch (e) {
      // The reader went away: main() ends the command quietly, by SIGPIPE as `cat` is.
      if (isClosedOutput(e)) throw new BrokenPipe();
      throw e;
    }
    progress.finish();
    return end - start;
  } finally {
    mapping?.close();
    file.close();
  }
}
