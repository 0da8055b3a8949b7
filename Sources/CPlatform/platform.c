#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "CPlatform.h"

int safeshard_direct_io_flag(void) {
#ifdef O_DIRECT
  return O_DIRECT;
#else
  return 0;
#endif
}

void safeshard_fix_mmap_threshold(int bytes) {
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, bytes);
#else
  (void)bytes;
#endif
}

// Guarded file mappings: a table of the mapped ranges read now, which the SIGBUS handler
// searches. A slot is claimed through `guard_used`; its range is published by storing `start`
// last, and withdrawn by clearing `start` first, so the handler never sees a half-written slot.
#define GUARD_SLOTS 1024
static _Atomic(bool) guard_used[GUARD_SLOTS];
static _Atomic(uintptr_t) guard_start[GUARD_SLOTS];
static _Atomic(size_t) guard_length[GUARD_SLOTS];
static _Atomic(bool) guard_missing[GUARD_SLOTS];
static struct sigaction guard_previous;
static uintptr_t guard_page_size;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static int guard_install_error;

static void guard_on_sigbus(int signal, siginfo_t *info, void *context) {
  uintptr_t address = (uintptr_t)info->si_addr;
  // Only a fault of the memory system (si_code > 0), not a SIGBUS sent with kill(2) or sigqueue(3).
  for (int slot = 0; info->si_code > 0 && slot < GUARD_SLOTS; slot++) {
    uintptr_t start = atomic_load(&guard_start[slot]);
    if (start == 0 || address < start || address - start >= atomic_load(&guard_length[slot])) continue;
    // The file ended before this page: read zeros from here on, and let the reader report it.
    void *page = (void *)(address & ~(guard_page_size - 1));
    if (mmap(page, guard_page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
      atomic_store(&guard_missing[slot], true);
      return;
    }
    break;
  }
  // Not a guarded read: what would have happened without this handler.
  if (guard_previous.sa_flags & SA_RESETHAND) {
    struct sigaction fallback = {.sa_handler = SIG_DFL};
    sigemptyset(&fallback.sa_mask);
    sigaction(SIGBUS, &fallback, NULL);
  }
  if (guard_previous.sa_flags & SA_SIGINFO) {
    guard_previous.sa_sigaction(signal, info, context);
  } else if (guard_previous.sa_handler != SIG_DFL && guard_previous.sa_handler != SIG_IGN) {
    guard_previous.sa_handler(signal);
  } else {
    // Returning re-runs the access, which now ends the process as SIGBUS does by default.
    struct sigaction fallback = {.sa_handler = SIG_DFL};
    sigemptyset(&fallback.sa_mask);
    sigaction(SIGBUS, &fallback, NULL);
  }
}

static void guard_install_once(void) {
  guard_page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
  struct sigaction action = {.sa_sigaction = guard_on_sigbus, .sa_flags = SA_SIGINFO | SA_ONSTACK};
  sigemptyset(&action.sa_mask);
  if (sigaction(SIGBUS, &action, &guard_previous) != 0) guard_install_error = errno;
}

int safeshard_guard_install(void) {
  pthread_once(&guard_once, guard_install_once);
  return guard_install_error;
}

int safeshard_guard_begin(const void *start, size_t length) {
  for (int slot = 0; slot < GUARD_SLOTS; slot++) {
    if (atomic_exchange(&guard_used[slot], true)) continue;
    atomic_store(&guard_missing[slot], false);
    atomic_store(&guard_length[slot], length);
    atomic_store(&guard_start[slot], (uintptr_t)start);
    return slot;
  }
  return -1;
}

bool safeshard_guard_faulted(int slot) {
  return atomic_load(&guard_missing[slot]);
}

void safeshard_guard_end(int slot) {
  atomic_store(&guard_start[slot], 0);
  atomic_store(&guard_used[slot], false);
}

int safeshard_populate_read(void *start, size_t length) {
#ifdef __linux__
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14; older C headers lack it.
#endif
  (void)madvise(start, length, MADV_WILLNEED);
  return madvise(start, length, MADV_POPULATE_READ) == 0 ? 0 : errno;
#else
  (void)start;
  (void)length;
  return EINVAL;
#endif
}

void safeshard_advise_huge_pages(void *start, size_t length) {
#ifdef MADV_HUGEPAGE
  (void)madvise(start, length, MADV_HUGEPAGE);
#else
  (void)start;
  (void)length;
#endif
}
