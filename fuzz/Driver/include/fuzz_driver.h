#ifndef TRAWL_FUZZ_DRIVER_H
#define TRAWL_FUZZ_DRIVER_H
#include <stddef.h>
#include <stdint.h>

/// One input: return 0 (anything else is reserved by libFuzzer).
typedef int (*trawl_fuzz_one)(const uint8_t *data, size_t size);

/// Runs libFuzzer's driver over `one` with the process's arguments. A SwiftPM executable's
/// main is its own (renamed <Target>_main), so libFuzzer's main never runs: the harness's
/// top-level code calls this instead.
int trawl_fuzz_run(int argc, char **argv, trawl_fuzz_one one);

/// An anonymous file in memory (memfd_create, which Swift's Glibc module leaves out).
int trawl_fuzz_memory_file(void);

#endif
