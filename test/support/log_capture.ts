// Captures the project logger's lines for a test that provokes logged errors on purpose: they are
// asserted, not printed. Every level down to `level` (default debug) is captured, whatever the
// test run's level; capture.lines fills as lines are logged; restore() puts level and transports back.
import { Writable } from 'stream';
import * as winston from 'winston';
import { logger } from '../../src/log';

export interface LogCapture {
  lines: string[];
  restore(): void;
}

export function captureLogs(level = 'debug'): LogCapture {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter((l) => l !== ''));
      done();
    },
  });
  const transport = new winston.transports.Stream({ stream: sink });
  const silenced = logger.transports.filter((t) => !t.silent);
  for (const t of silenced) t.silent = true;
  logger.add(transport);
  const previousLevel = logger.level;
  logger.level = level;
  return {
    lines,
    restore() {
      logger.level = previousLevel;
      logger.remove(transport);
      for (const t of silenced) t.silent = false;
    },
  };
}
