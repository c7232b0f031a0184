// What the pager core tells the client mappings of its own process (native/mapping.cc).
// A mapping in another process learns that its pager is gone from its socket (watchPager); one
// in the pager's own process may have nothing to watch, so the pager says so when it stops.
#pragma once

namespace starnix {

// The pager serving the userfaultfd description behind uffd_fd is stopping: every mapping of
// this process registered with that description (compared with kcmp(KCMP_FILE), so through
// dups and fds passed over sockets too) reports its never-filled pages as EPIPE, "the pager is
// gone", instead of EIO. Thread-safe; does nothing where kcmp is not available.
void MarkPagerGone(int uffd_fd);

}  // namespace starnix
