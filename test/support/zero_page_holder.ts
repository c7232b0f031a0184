// A holder of a file's handle that puts pages of zeros into the file's shared page cache (issue 12),
// for test/hostile/zero_pages.test.ts and test/pager/huge_pages.test.ts: a Python process, as uid
// 65534 without capabilities (setpriv) or as root.
import { execFileSync } from 'child_process';

// Run with the handle as fd 3: ACTION is "touch" (MAP_SHARED read-only, no uffd, one byte read
// per page at a stride of PAGE from FROM on), "populate" (the same range, MADV_POPULATE_READ), or
// "fallocate" (root: reopen /proc/self/fd/3 O_RDWR, fallocate(fd, 0, FROM, SIZE - FROM)). Prints
// JSON: the uid, how many pages it touched, and the sum of the bytes it read there (0: it saw, and
// so made, zero pages).
const HOLDER = String.raw`
import json, mmap, os, sys
action, size, page, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
out = {"uid": os.getuid(), "pages": 0, "sum": 0}
if action == "fallocate":
    fd = os.open("/proc/self/fd/3", os.O_RDWR)
    os.posix_fallocate(fd, start, size - start)
    out["pages"] = (size - start + page - 1) // page
else:
    m = mmap.mmap(3, size, mmap.MAP_SHARED, mmap.PROT_READ)
    if action == "populate":
        m.madvise(22, start - start % mmap.PAGESIZE, size - (start - start % mmap.PAGESIZE))  # MADV_POPULATE_READ
    for at in range(start, size, page):
        out["sum"] += m[at]
        out["pages"] += 1
print(json.dumps(out))
`;

export function holder(action: 'touch' | 'populate' | 'fallocate', fd: number, size: number, page: number, from: number, asRoot: boolean): { uid: number; pages: number; sum: number } {
  const who = asRoot ? [] : ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all'];
  const argv = [...who, '/usr/bin/python3', '-c', HOLDER, action, String(size), String(page), String(from)];
  const out = execFileSync(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe', fd], encoding: 'utf8' });
  return JSON.parse(out);
}

