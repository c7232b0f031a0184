// scripts/sanitizer_reports.js decides whether a sanitizer run failed: a report fails it when
// any of its frames is in native/. Samples below are cut from real reports of this project's
// runs (paths as the sanitized build prints them, relative to build-sanitize/<variant>/build).
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { splitReports, inAddon } = require('../../scripts/sanitizer_reports.js');

const ASAN_UAF = `=================================================================
==22866==ERROR: AddressSanitizer: heap-use-after-free on address 0x6030009554f0 at pc 0x7fd97544e56a bp 0x7fd9715dde20 sp 0x7fd9715dde18
READ of size 8 at 0x6030009554f0 thread T12
    #0 0x7fd97544e569 in std::__shared_ptr<starnix::pager::PagedFile, (__gnu_cxx::_Lock_policy)2>::get() const /usr/include/c++/12/bits/shared_ptr_base.h:1666
    #3 0x7fd97544e569 in starnix::pager::Pager::MaybeForgetLocked(std::shared_ptr<starnix::pager::PagedFile> const&, std::vector<std::pair<unsigned int, std::string> >*) ../../../native/pager_core.cc:770
    #4 0x7fd97544fc65 in starnix::pager::Pager::HandleRecheck() ../../../native/pager_core.cc:798
    #8 0x7fd99c8a71f4 in start_thread nptl/pthread_create.c:442

SUMMARY: AddressSanitizer: heap-use-after-free /usr/include/c++/12/bits/shared_ptr_base.h:1666 in std::__shared_ptr<starnix::pager::PagedFile, (__gnu_cxx::_Lock_policy)2>::get() const
==22866==ABORTING
`;

const UBSAN_IN_ADDON = `../../../native/mapping.cc:212:31: runtime error: load of misaligned address 0x7f00000001 for type 'uint64_t', which requires 8 byte alignment
    #0 0x7f3b1c2d4e10 in ReadWorker::Execute() ../../../native/mapping.cc:212
    #1 0x55d0c0a1b2c3 in worker (/usr/bin/node+0x1b2c3)
`;

const TSAN_OUTSIDE = `==================
WARNING: ThreadSanitizer: data race (pid=4242)
  Write of size 8 at 0x7b0400000010 by thread T3:
    #0 memcpy ../../../../src/libsanitizer/sanitizer_common/sanitizer_common_interceptors.inc:827 (libtsan.so.2+0x62a5c)
    #1 uv__work_done (/usr/bin/node+0x1a0b0c0)

  Previous read of size 8 at 0x7b0400000010 by main thread:
    #0 read ../../../../src/libsanitizer/sanitizer_common/sanitizer_common_interceptors.inc:1017 (libtsan.so.2+0x4f2b1)
    #1 uv__read (/usr/bin/node+0x1a1f0d0)

SUMMARY: ThreadSanitizer: data race (/usr/bin/node+0x1a0b0c0) in uv__work_done
==================
ThreadSanitizer: reported 1 warnings
`;

describe('sanitizer report triage (scripts/sanitizer_reports.js)', () => {
  test('splits a log into its reports', () => {
    expect(splitReports(ASAN_UAF + UBSAN_IN_ADDON)).toHaveLength(2);
    // "ThreadSanitizer: reported N warnings" closes a log; it is not a report of its own.
    expect(splitReports(TSAN_OUTSIDE)).toHaveLength(1);
    expect(splitReports('')).toHaveLength(0);
  });

  test('a report with a frame in native/ is the addon\'s, one without is not', () => {
    const [uaf] = splitReports(ASAN_UAF);
    expect(inAddon(uaf)).toBe(true);
    const [ub] = splitReports(UBSAN_IN_ADDON);
    expect(inAddon(ub)).toBe(true);
    const [race] = splitReports(TSAN_OUTSIDE);
    expect(inAddon(race)).toBe(false);
    // An unsymbolized frame in the addon's module is the addon's.
    expect(inAddon('WARNING: ThreadSanitizer: data race (pid=1)\n    #1 <null> <null> (starnix_native.node+0x7b4af)')).toBe(true);
    // node_modules/node-addon-api and paths that merely contain "native" are not native/.
    expect(inAddon('WARNING: ThreadSanitizer: x\n    #0 f node_modules/node-addon-api/napi-inl.h:10\n    #1 g /src/alternative/x.cc:3')).toBe(false);
  });
});
