#ifndef SAFESHARD_CPLATFORM_H
#define SAFESHARD_CPLATFORM_H

/// The open(2)/fcntl(2) flag for direct I/O (`O_DIRECT`), or 0 where the platform has none.
/// Glibc declares it only under `_GNU_SOURCE`, which Swift's Glibc module does not see.
int safeshard_direct_io_flag(void);

#endif
