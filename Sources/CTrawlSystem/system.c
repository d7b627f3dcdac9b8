#define _GNU_SOURCE
#include "trawl_system.h"
#include <errno.h>
#include <sched.h>
#include <string.h>

int trawl_set_cpu_affinity(const uint8_t *mask, size_t bytes) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (size_t cpu = 0; cpu < bytes * 8; cpu++) {
        if (!(mask[cpu / 8] & (1u << (cpu % 8)))) continue;
        if (cpu >= CPU_SETSIZE) { errno = EINVAL; return -1; }
        CPU_SET(cpu, &set);
    }
    return sched_setaffinity(0, sizeof set, &set);
}

int trawl_get_cpu_affinity(uint8_t *mask, size_t bytes) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    memset(mask, 0, bytes);
    for (size_t cpu = 0; cpu < bytes * 8 && cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, &set)) mask[cpu / 8] |= (uint8_t)(1u << (cpu % 8));
    }
    return 0;
}
