#ifndef SAFESHARD_CPLATFORM_H
#define SAFESHARD_CPLATFORM_H

#include <stdbool.h>
#include <stddef.h>

/// The open(2)/fcntl(2) flag for direct I/O (`O_DIRECT`), or 0 where the platform has none.
/// Glibc declares it only under `_GNU_SOURCE`, which Swift's Glibc module does not see.
int safeshard_direct_io_flag(void);

/// Fixes glibc's mmap threshold (`mallopt(M_MMAP_THRESHOLD, bytes)`), which also stops glibc from
/// raising it as mapped blocks are freed; does nothing where the C library has no `mallopt`.
void safeshard_fix_mmap_threshold(int bytes);

/// Installs, once, the SIGBUS handler that keeps a read of a guarded file mapping from crashing
/// the process when the file shrinks under it: the handler maps a page of zeros over the missing
/// page and marks the guard. Signals outside every guard go on to the handler installed before.
/// Returns 0, or the `errno` of `sigaction`.
int safeshard_guard_install(void);

/// Guards the `length` bytes from `start` (a file mapping) until `safeshard_guard_end`; returns
/// the guard's slot, or -1 when every slot is taken.
int safeshard_guard_begin(const void *start, size_t length);

/// Ends the guard of `slot`.
void safeshard_guard_end(int slot);

/// Whether a page of the guard of `slot` has been missing (and read as zeros) so far.
bool safeshard_guard_faulted(int slot);

/// Loads the pages of `length` bytes from `start` (a file mapping) and maps them
/// (`madvise(MADV_WILLNEED)`, then `madvise(MADV_POPULATE_READ)`); returns 0, or the `errno`:
/// `EFAULT` where the file ends before them, `EINVAL` where the kernel cannot populate (and
/// everywhere but Linux).
int safeshard_populate_read(void *start, size_t length);

/// Asks for transparent huge pages for the `length` bytes of anonymous memory from `start`
/// (`madvise(MADV_HUGEPAGE)`, which counts where the system's THP mode is `madvise`): fewer
/// page faults when it is first touched, fewer TLB misses, and far fewer pages for direct I/O to
/// pin. Does nothing where there are none.
void safeshard_advise_huge_pages(void *start, size_t length);

#endif
