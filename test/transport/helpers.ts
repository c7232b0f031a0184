// Shared by the transport tests: spawning a peer process that holds the other end of a channel.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Channel } from '../../src/transport/channel';
import { Handle } from '../../src/transport/handle';

export const PEER_JS = path.join(__dirname, '..', '..', 'dist', 'test', 'transport', 'peer.js');

export interface Peer {
  child: ChildProcess;
  channel: Channel;
  /** Resolves with the exit code (or the signal name) when the peer exits. */
  exited: Promise<number | string>;
  /** Everything the peer printed so far. */
  output(): string;
  /** Everything it wrote to stderr (its log lines): captured for the test to assert, not printed. */
  stderr(): string;
}

/** Starts the peer in `mode` with one end of a new channel as its fd 3; we keep the other end. */
export function spawnPeer(
  mode: string,
  extraArgs: string[] = [],
  opts: { uid?: number; gid?: number; nodeArgs?: string[] } = {},
): Peer {
  if (!fs.existsSync(PEER_JS)) throw new Error(`${PEER_JS} is missing: run \`npx tsc -p .\` first`);
  const [mine, theirs] = Channel.pair();
  const theirHandle = theirs.toHandle();
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), PEER_JS, mode, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe', theirHandle.fd],
    uid: opts.uid,
    gid: opts.gid,
  });
  theirHandle.close();
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return { child, channel: mine, exited, output: () => out, stderr: () => err };
}

export interface Message {
  bytes: Buffer;
  handles: Handle[];
}

/**
 * Collects every message of a channel (one permanent listener, so none is dropped between two
 * awaits) and hands them out in order with next().
 */
export class Inbox {
  private readonly arrived: Message[] = [];
  private readonly waiting: Array<(m: Message) => void> = [];

  constructor(ch: Channel) {
    ch.on('message', (bytes: Buffer, handles: Handle[]) => {
      const w = this.waiting.shift();
      if (w) w({ bytes, handles });
      else this.arrived.push({ bytes, handles });
    });
  }

  next(): Promise<Message> {
    const m = this.arrived.shift();
    if (m) return Promise.resolve(m);
    return new Promise((resolve) => this.waiting.push(resolve));
  }
}

export function openFdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

export function waitFor(ch: Channel, event: 'close'): Promise<void> {
  return new Promise((resolve) => (ch.closed && event === 'close' ? resolve() : ch.once(event, () => resolve())));
}
