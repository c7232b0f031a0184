// Bounds that keep one client from exhausting the server. Past a bound the request is answered
// with NO_RESOURCES (or the new pager channel is closed with that epitaph), never queued.
// Messages in flight need no count of their own: every request is answered before the next is
// read, and a client that does not read its replies meets the channel's cap on queued bytes
// (4 MiB), past which its channel is closed (src/transport/channel.ts).
export interface ServerLimits {
  /** Files registered (and still held) per pager. */
  filesPerPager: number;
  /** Live pagers created through one Manager connection. */
  pagersPerConnection: number;
  /** Mappings attached through one Mapper connection. */
  mappingsPerConnection: number;
  /** Wake watchers kept for one Manager connection (each is an fd held for the connection's life). */
  wakeWatchersPerConnection: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  filesPerPager: 65536,
  pagersPerConnection: 64,
  mappingsPerConnection: 65536,
  wakeWatchersPerConnection: 64,
};
