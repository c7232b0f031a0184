// The project's one logger: winston, one line per event, level from STARNIX_PAGER_LOG
// (error, warn, info, debug; default warn so that a CLI's stdout stays clean and tests stay quiet).
// Lines go to stderr: stdout belongs to the data a command prints.
import * as winston from 'winston';

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

export const logger = winston.createLogger({
  level: process.env.STARNIX_PAGER_LOG ?? 'warn',
  format: winston.format.combine(
    winston.format.timestamp(),
    winston.format.printf((info) => {
      const { timestamp, level, message, ...rest } = info;
      const fields = Object.entries(rest)
        .filter(([k]) => typeof k === 'string')
        .map(([k, v]) => `${k}=${escapeControls(typeof v === 'string' ? v : JSON.stringify(v) ?? String(v))}`)
        .join(' ');
      return `${timestamp} ${level} ${escapeControls(String(message))}${fields ? ' ' + fields : ''}`;
    }),
  ),
  transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug', 'verbose', 'silly'] })],
});

export function setLogLevel(level: string): void {
  logger.level = level;
}
