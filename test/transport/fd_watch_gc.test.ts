// A watcher's callback must outlive a garbage collection between stop() and start(): the addon
// holds it weakly while the watcher is stopped, and the SuspendContainer path (wake sources are
// armed, disarmed and armed again) once failed with N-API's "Invalid argument" after a GC.
import * as v8 from 'v8';
import * as vm from 'vm';
import { POLL_READABLE, watchFd } from '../../src/transport/eventpair';
import { createEventFd } from '../../src/transport/stand_ins';
import { native } from '../../src/native';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

test('a watcher stopped, garbage-collected around and started again still calls back, and stops', async () => {
  const ev = createEventFd();
  let calls = 0;
  // The closure is held by nothing but the watcher (as wake sources do).
  const watcher = ((): ReturnType<typeof watchFd> => watchFd(ev.fd, () => { calls++; }))();
  try {
    watcher.start(POLL_READABLE);
    watcher.stop();
    for (let i = 0; i < 5; i++) gc();
    expect(() => watcher.start(POLL_READABLE)).not.toThrow();
    native.eventfdAdd(ev.fd, 1);
    const deadline = Date.now() + 5000;
    while (calls === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(calls).toBeGreaterThan(0);
    expect(() => watcher.stop()).not.toThrow();
  } finally {
    watcher.close();
    ev.close();
  }
});
