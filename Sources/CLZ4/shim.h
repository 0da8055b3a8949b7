#ifndef SAFESHARD_CLZ4_SHIM_H
#define SAFESHARD_CLZ4_SHIM_H
#include <lz4.h>
#endif
