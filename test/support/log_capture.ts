// Captures the project logger's lines for a test that provokes logged errors on purpose: they are
// asserted, not printed. capture.lines fills as lines are logged; restore() puts the usual
// transports back.
import { Writable } from 'stream';
import * as winston from 'winston';
import { logger } from '../../src/log';

export interface LogCapture {
  lines: string[];
  restore(): void;
}

export function captureLogs(): LogCapture {
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
  return {
    lines,
    restore() {
      logger.remove(transport);
      for (const t of silenced) t.silent = false;
    },
  };
}
