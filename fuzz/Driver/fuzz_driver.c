#define _GNU_SOURCE
#include <sys/mman.h>
#include "fuzz_driver.h"

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*one)(const uint8_t *, size_t));

static trawl_fuzz_one registered;

// libFuzzer's archive brings its own main, which wants this symbol to link; the harness's
// main (SwiftPM's) is the one that runs, and hands its callback to the driver below.
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return registered ? registered(data, size) : 0; }

int trawl_fuzz_run(int argc, char **argv, trawl_fuzz_one one) {
    registered = one;
    return LLVMFuzzerRunDriver(&argc, &argv, one);
}

int trawl_fuzz_memory_file(void) { return memfd_create("trawl-fuzz-trace", 0); }
