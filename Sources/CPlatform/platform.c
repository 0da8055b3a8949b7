#define _GNU_SOURCE
#include <fcntl.h>

#include "CPlatform.h"

int safeshard_direct_io_flag(void) {
#ifdef O_DIRECT
  return O_DIRECT;
#else
  return 0;
#endif
}
