// Regression tests for server and client bugs found in review. Each failed before its fix.
import * as fs from 'fs';
import { PagerClientConnection } from '../../src/client';
import { EmbeddedService } from '../../src/server/service';
import { createMemfd } from '../../src/transport/memfd';

jest.setTimeout(10000);

function openFdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

test('createPager that throws (a block size that is no integer) leaks neither the pager channel nor the backing', () => {
  const svc = EmbeddedService.start();
  const client = PagerClientConnection.connect(svc.svcDir);
  try {
    const before = openFdCount();
    const backing = createMemfd('backing', 1 << 16);
    expect(() => client.createPager(backing, 1.5)).toThrow(RangeError);
    expect(backing.valid).toBe(false); // moved into the call, whatever happened
    expect(openFdCount()).toBe(before);
  } finally {
    client.close();
    svc.close();
  }
});
