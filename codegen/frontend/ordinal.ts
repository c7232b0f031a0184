// Method ordinals as fidlc computes them (RFC-0029): the first 8 bytes of
// SHA-256("<library>/<Protocol>.<Method>") read little-endian, top bit cleared.
import { createHash } from 'crypto';

export function methodSelector(library: string, protocol: string, method: string, selectorAttr?: string): string {
  if (selectorAttr === undefined) return `${library}/${protocol}.${method}`;
  // @selector("Name") renames the method; @selector("lib/Protocol.Name") replaces everything.
  return selectorAttr.includes('/') ? selectorAttr : `${library}/${protocol}.${selectorAttr}`;
}

export function methodOrdinal(selector: string): bigint {
  const digest = createHash('sha256').update(selector, 'utf8').digest();
  return digest.readBigUInt64LE(0) & 0x7fffffffffffffffn;
}
