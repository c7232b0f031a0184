// Bounds that keep one client from exhausting the server. Past a bound the request is answered
// with NO_RESOURCES (or the new pager channel is closed with that epitaph), never queued.
export interface ServerLimits {
  /** Files registered (and still held) per pager. */
  filesPerPager: number;
  /** Live pagers created through one Manager connection. */
  pagersPerConnection: number;
  /** Two-way calls a Pager channel may have in flight; more and the connection is closed. */
  callsInFlight: number;
  /** Mappings attached through one Mapper connection. */
  mappingsPerConnection: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  filesPerPager: 65536,
  pagersPerConnection: 64,
  callsInFlight: 256,
  mappingsPerConnection: 65536,
};
