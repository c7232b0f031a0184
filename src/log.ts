// The project's one logger: winston, one line per event, level from STARNIX_PAGER_LOG
// (error, warn, info, debug; default warn so that a CLI's stdout stays clean and tests stay quiet).
// Lines go to stderr: stdout belongs to the data a command prints.
import * as winston from 'winston';

export const logger = winston.createLogger({
  level: process.env.STARNIX_PAGER_LOG ?? 'warn',
  format: winston.format.combine(
    winston.format.timestamp(),
    winston.format.printf((info) => {
      const { timestamp, level, message, ...rest } = info;
      const fields = Object.entries(rest)
        .filter(([k]) => typeof k === 'string')
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      return `${timestamp} ${level} ${message}${fields ? ' ' + fields : ''}`;
    }),
  ),
  transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug', 'verbose', 'silly'] })],
});

export function setLogLevel(level: string): void {
  logger.level = level;
}
