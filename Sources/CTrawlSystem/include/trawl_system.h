/* System calls the core needs that the Swift Glibc module does not expose (they want
   _GNU_SOURCE). */
#ifndef TRAWL_SYSTEM_H
#define TRAWL_SYSTEM_H
#include <stddef.h>
#include <stdint.h>
#include <sys/eventfd.h>

/* CPU affinity of the calling process as a bit mask, CPU n in bit n % 8 of byte n / 8.
   0 on success, -1 with errno set. */
int trawl_set_cpu_affinity(const uint8_t *mask, size_t bytes);
int trawl_get_cpu_affinity(uint8_t *mask, size_t bytes);

#endif
