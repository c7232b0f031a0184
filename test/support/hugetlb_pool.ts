// The hugetlb pool for tests and the benchmark: sets vm.nr_hugepages (root only) and puts the old
// value back. Huge pages are a machine-wide resource: callers ask for what they need on top of
// what is already there, and check what they got (the kernel may find fewer free 2 MiB blocks).
import * as fs from 'fs';

const NR = '/proc/sys/vm/nr_hugepages';

export function meminfoHuge(): { total: number; free: number; reserved: number; surplus: number } {
  const text = fs.readFileSync('/proc/meminfo', 'utf8');
  const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { total: get('HugePages_Total'), free: get('HugePages_Free'), reserved: get('HugePages_Rsvd'), surplus: get('HugePages_Surp') };
}

/** Free huge pages nobody has reserved: what a new reservation can take. */
export function unreservedFree(): number {
  const m = meminfoHuge();
  return m.free - m.reserved;
}

export interface HugePool {
  /** Takes back the pages this grew the pool by (not an absolute old value: two runs that grow
   *  and restore at overlapping times, e.g. test suites of two checkouts, then both end right). */
  restore(): void;
}

/**
 * Grows the pool so that at least `pages` free huge pages are unreserved. Returns the pool, or a
 * reason it cannot (not root, no hugetlb support, the kernel found too few free 2 MiB blocks).
 */
export function growPool(pages: number): HugePool | string {
  if (process.getuid?.() !== 0) return 'not root: vm.nr_hugepages cannot be set';
  if (!fs.existsSync(NR)) return `no ${NR}: this kernel has no hugetlb pages`;
  const old = Number(fs.readFileSync(NR, 'utf8').trim());
  const want = old + Math.max(0, pages - unreservedFree());
  try {
    fs.writeFileSync(NR, String(want));
  } catch (e) {
    return `cannot write ${NR}: ${(e as Error).message}`;
  }
  const added = Math.max(0, Number(fs.readFileSync(NR, 'utf8').trim()) - old);
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    const now = Number(fs.readFileSync(NR, 'utf8').trim());
    fs.writeFileSync(NR, String(Math.max(0, now - added)));
  };
  if (unreservedFree() < pages) {
    const got = unreservedFree();
    restore();
    return `the kernel found only ${got} of ${pages} free huge pages (memory too fragmented)`;
  }
  return { restore };
}
