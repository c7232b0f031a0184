// ProxyWakeChannel: the server sits between a channel into the container and one to the outside
// world and forwards every message, bytes and handles unchanged, both ways.
//
//   [outside peer] <-- remote --> [this server] <-- container --> [container]
//
// A message from the remote side first adds 1 to the counter (an eventfd: COUNTER_POSITIVE is
// "readable"), then goes to the container; the counter is a wake source of the container, so a
// message that arrives while it is suspended wakes it, and a count the container has not taken
// back keeps it from staying suspended. Messages from the container are forwarded as they are.
// The proxy ends when either side closes (what was read before is forwarded first) or a send
// fails; then both channels are closed, so each peer sees PEER_CLOSED. Queues are the
// transport's: a side that does not read has its write queue capped (4 MiB or 4096 handles by
// default), past which the proxy ends rather than hold more.
import { logger } from '../../log';
import { native } from '../../native';
import { Channel } from '../../transport/channel';
import { Handle } from '../../transport/handle';

export class WakeChannelProxy {
  private ended = false;
  private forwardedIn = 0;
  private forwardedOut = 0;

  constructor(
    readonly name: string,
    private readonly container: Channel,
    private readonly remote: Channel,
    /** The proxy's own fd of the counter (an eventfd): it only ever adds to it. */
    private readonly counter: Handle,
    private readonly onEnd: (proxy: WakeChannelProxy) => void,
  ) {
    remote.on('message', (bytes: Buffer, handles: Handle[]) => this.forward(bytes, handles, true));
    container.on('message', (bytes: Buffer, handles: Handle[]) => this.forward(bytes, handles, false));
    remote.once('close', () => this.end('the remote side closed'));
    container.once('close', () => this.end('the container side closed'));
    remote.start();
    container.start();
  }

  get active(): boolean {
    return !this.ended;
  }

  /** Messages forwarded into the container, and out of it. */
  get counts(): { in: number; out: number } {
    return { in: this.forwardedIn, out: this.forwardedOut };
  }

  close(): void {
    this.end('the server closed it');
  }

  private forward(bytes: Buffer, handles: Handle[], inward: boolean): void {
    if (this.ended) {
      for (const h of handles) h.close();
      return;
    }
    if (inward) {
      const r = native.eventfdAdd(this.counter.fd, 1) as number;
      if (r !== 0) logger.warn(`wake proxy ${this.name}: could not add to the message counter (errno ${-r}); forwarded all the same`);
    }
    try {
      (inward ? this.container : this.remote).send(bytes, handles);
    } catch (e) {
      this.end(`forwarding ${inward ? 'into' : 'out of'} the container failed: ${(e as Error).message}`);
      return;
    }
    if (inward) this.forwardedIn++;
    else this.forwardedOut++;
  }

  private end(why: string): void {
    if (this.ended) return;
    this.ended = true;
    logger.info(`wake proxy ${this.name}: ended: ${why}`, { in: this.forwardedIn, out: this.forwardedOut });
    this.remote.close();
    this.container.close();
    this.counter.close();
    this.onEnd(this);
  }
}
