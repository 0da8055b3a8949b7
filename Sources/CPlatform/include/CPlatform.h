#ifndef SAFESHARD_CPLATFORM_H
#define SAFESHARD_CPLATFORM_H

/// The open(2)/fcntl(2) flag for direct I/O (`O_DIRECT`), or 0 where the platform has none.
/// Glibc declares it only under `_GNU_SOURCE`, which Swift's Glibc module does not see.
int safeshard_direct_io_flag(void);

/// Fixes glibc's mmap threshold (`mallopt(M_MMAP_THRESHOLD, bytes)`), which also stops glibc from
/// raising it as mapped blocks are freed; does nothing where the C library has no `mallopt`.
void safeshard_fix_mmap_threshold(int bytes);

#endif
