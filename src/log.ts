// The project's one logger: winston, one line per event, level from STARNIX_PAGER_LOG
// (error, warn, info, debug; default warn so that a CLI's stdout stays clean and tests stay quiet).
// Lines go to stderr: stdout belongs to the data a command prints. Every line starts with
// "starnix-pager:" like the CLI's own messages, so a reader can tell whose line it is.
import { Writable } from 'stream';
import * as winston from 'winston';

const LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LEVELS)[number];

let timestamps = true;

// Control characters (C0, DEL, C1, and the Unicode line and paragraph separators) escaped: text a
// client chose (a RegisterFile name, say) can never start a log line of its own.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/g;

/** `text` with every control character written as \xNN or \uNNNN. */
export function escapeControls(text: string): string {
  return text.replace(CONTROL, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** The message and its fields as one line: `message k=v k=v` (no level, no prefix), control characters escaped. */
export function formatEvent(info: winston.Logform.TransformableInfo): string {
  const { timestamp: _t, level: _l, message, ...rest } = info;
  const fields = Object.entries(rest)
    .filter(([k]) => typeof k === 'string')
    .map(([k, v]) => `${k}=${escapeControls(typeof v === 'string' ? v : JSON.stringify(v) ?? String(v))}`)
    .join(' ');
  return escapeControls(`${String(message)}${fields ? ' ' + fields : ''}`);
}

const consoleTransport = new winston.transports.Console({
  stderrLevels: ['error', 'warn', 'info', 'debug', 'verbose', 'silly'],
});

export const logger = winston.createLogger({
  level: process.env.STARNIX_PAGER_LOG ?? 'warn',
  format: winston.format.combine(
    winston.format.timestamp(),
    winston.format.printf((info) => `starnix-pager: ${timestamps ? `${String(info.timestamp)} ` : ''}${info.level}: ${formatEvent(info)}`),
  ),
  transports: [consoleTransport],
});

export function isLogLevel(level: string): level is LogLevel {
  return (LEVELS as readonly string[]).includes(level);
}

export function setLogLevel(level: string): void {
  logger.level = level;
}

/** Timestamps help a long-running server's log; a one-shot command's lines do without. */
export function setLogTimestamps(on: boolean): void {
  timestamps = on;
}

/** One captured log event: its message, and the whole line as `message k=v ...`. */
export interface CapturedEvent {
  level: string;
  message: string;
  line: string;
}

/**
 * Captures events at `level` and above instead of printing them, until stop(). The CLI uses
 * it around an embedded server, whose refusals are the detail of the command's own one-line
 * error (the FIDL answer carries only a status), not lines of their own in the middle of it.
 */
export class LogCapture {
  readonly events: CapturedEvent[] = [];
  private readonly transport: winston.transport;
  private stopped = false;

  constructor(level: LogLevel) {
    const events = this.events;
    const sink = new Writable({
      objectMode: true,
      write(info: winston.Logform.TransformableInfo, _enc, done) {
        events.push({ level: info.level, message: String(info.message), line: formatEvent(info) });
        done();
      },
    });
    this.transport = new winston.transports.Stream({ stream: sink, level });
    consoleTransport.silent = true;
    logger.add(this.transport);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    logger.remove(this.transport);
    consoleTransport.silent = false;
  }
}
