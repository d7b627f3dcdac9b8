/*
 * A packet-source plugin written in plain C against trawl_plugin.h, used by the tests to
 * prove the C ABI. `counter::N` delivers N Ethernet frames of Counter::size bytes, one
 * microsecond apart, in batches.
 *
 * It builds against today's header (ABI 1.1) and against the frozen header of ABI 1.0
 * (Tests/Fixtures/abi-1.0), which has no TRAWL_ABI_MINOR: what 1.1 added is used only when
 * the header has it. With 1.1, the path may go on with comma-separated words that make the
 * plugin talk back: `counter::N,warn` (a warning at open), `,weird=K` (a weird every K
 * packets, named `counter_milestone` or, after `,name=`, what follows up to the next comma),
 * `,fail=K` (the source fails through host->error after K packets), `,code=C`
 * (open fails with trawl_error_code C); and a file that starts with "TRAWLCNT" and then a
 * number is read as `counter::NUMBER`, found by its magic when named without a prefix.
 *
 * Compile-time switches make the broken libraries the loader must refuse:
 *   -DCOUNTER_ABI_VERSION=99          speaks another ABI version
 *   -DCOUNTER_NO_ENTRY                has no entry symbol
 *   -DCOUNTER_NAME='"Other::Counter"' another plugin name (same prefix: a clash)
 *   -DCOUNTER_RUNTIME='"swift-5.9"'   says it needs another runtime
 *   -DCOUNTER_RESERVED=1              leaves a reserved field non-zero
 *   -DCOUNTER_STRUCT_SIZE=64          claims a descriptor smaller than its minor's
 *   -DCOUNTER_INFO_RESERVED=1         leaves trawl_source_info.reserved non-zero
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "trawl_plugin.h"

#ifndef COUNTER_ABI_VERSION
#define COUNTER_ABI_VERSION TRAWL_ABI_VERSION
#endif
#ifndef COUNTER_NAME
#define COUNTER_NAME "Example::Counter"
#endif

enum { OPTION_SIZE, OPTION_START, OPTION_COUNT };

typedef struct counter {
    uint64_t total, delivered;
    uint64_t start_ns;
    uint32_t size;
    uint64_t weird_every, fail_after;
    char weird_name[65];
#ifdef TRAWL_ABI_MINOR
    const trawl_host *host;
#endif
    uint8_t frame[2048];
} counter;

/* The packet count of a "TRAWLCNT<number>" file, or -1. */
static long long counter_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char magic[9] = {0};
    long long n = -1;
    if (fread(magic, 1, 8, f) == 8 && memcmp(magic, "TRAWLCNT", 8) == 0 && fscanf(f, "%lld", &n) != 1) n = -1;
    fclose(f);
    return n;
}

static int32_t counter_open(void *context, const trawl_open_request *request, void **handle, trawl_error *error) {
    (void)context;
    char *end = NULL;
    unsigned long long total = strtoull(request->path, &end, 10);
    unsigned long long weird_every = 0, fail_after = 0;
    char weird_name[65] = "counter_milestone";
    int warn = 0;
    long long from_file = counter_file(request->path);
    if (from_file >= 0) {
        total = (unsigned long long)from_file;
        end = "";
    }
#ifdef TRAWL_ABI_MINOR
    while (*end == ',') {
        if (strncmp(end, ",warn", 5) == 0) { warn = 1; end += 5; }
        else if (strncmp(end, ",weird=", 7) == 0) weird_every = strtoull(end + 7, &end, 10);
        else if (strncmp(end, ",fail=", 6) == 0) fail_after = strtoull(end + 6, &end, 10);
        else if (strncmp(end, ",name=", 6) == 0) {
            size_t n = strcspn(end + 6, ",");
            if (n >= sizeof weird_name) n = sizeof weird_name - 1;
            memcpy(weird_name, end + 6, n);
            weird_name[n] = '\0';
            end += 6 + strcspn(end + 6, ",");
        }
        else if (strncmp(end, ",code=", 6) == 0) {
            long code = strtol(end + 6, &end, 10);
            snprintf(error->message, sizeof error->message, "asked to fail with code %ld", code);
            error->code = (int32_t)code;
            error->system_errno = 0;
            return TRAWL_ERROR;
        }
        else break;
    }
#endif
    if (request->path[0] == '\0' || *end != '\0') {
        snprintf(error->message, sizeof error->message, "'%s' is not a packet count", request->path);
        return TRAWL_ERROR;
    }
    if (request->option_count != OPTION_COUNT) {
        snprintf(error->message, sizeof error->message, "expected %d options, got %u", OPTION_COUNT, request->option_count);
        return TRAWL_ERROR;
    }
    uint64_t size = request->options[OPTION_SIZE].value.count;
    if (size < 14 || size > sizeof(((counter *)0)->frame)) {
        snprintf(error->message, sizeof error->message, "Counter::size must be 14..2048, not %llu", (unsigned long long)size);
        return TRAWL_ERROR;
    }
    counter *c = calloc(1, sizeof *c);
    if (!c) { snprintf(error->message, sizeof error->message, "out of memory"); return TRAWL_ERROR; }
    c->total = total;
    c->size = (uint32_t)size;
    c->weird_every = weird_every;
    c->fail_after = fail_after;
    memcpy(c->weird_name, weird_name, sizeof c->weird_name);
#ifdef TRAWL_ABI_MINOR
    c->host = request->host;
    if (warn) c->host->warning(c->host->context, "counting out synthetic frames");
#else
    (void)warn;
#endif
    c->start_ns = (uint64_t)request->options[OPTION_START].value.integer * 1000000000ull;
    memset(c->frame, 0xff, 6);              /* broadcast destination */
    memcpy(c->frame + 6, "\x02\0\0\0\0\1", 6);
    c->frame[12] = 0x88; c->frame[13] = 0xb5; /* local experimental EtherType */
    *handle = c;
    return TRAWL_OK;
}

static void counter_info(void *handle, trawl_source_info *info) {
    counter *c = handle;
    info->link_type = 1; /* Ethernet */
    info->snaplen = c->size;
    info->netmask = 0;
    info->selectable_fd = -1;
    info->is_live = 0;
#ifdef COUNTER_INFO_RESERVED
    info->reserved = COUNTER_INFO_RESERVED;
#endif
}

static int32_t counter_set_filter(void *handle, const char *expression, trawl_error *error) {
    (void)handle;
    snprintf(error->message, sizeof error->message, "filters are not supported (got '%s')", expression);
    return TRAWL_ERROR;
}

static int32_t counter_next_batch(void *handle, trawl_packet *packets, uint32_t capacity, uint32_t *count, trawl_error *error) {
    (void)error;
    counter *c = handle;
    uint32_t n = 0;
    while (n < capacity && c->delivered < c->total) {
#ifdef TRAWL_ABI_MINOR
        if (c->fail_after && c->delivered == c->fail_after) {
            c->host->error(c->host->context, TRAWL_ERRC_IO, "the counter broke down");
            break;
        }
        if (c->weird_every && c->delivered % c->weird_every == 0)
            c->host->weird(c->host->context, c->weird_name, "a round number");
#endif
        packets[n].timestamp_ns = c->start_ns + c->delivered * 1000u;
        packets[n].captured_length = c->size;
        packets[n].wire_length = c->size;
        packets[n].data = c->frame; /* zero-copy: the same frame every time */
        packets[n].flags = 0;
        packets[n].link_type = 0; /* the source's own */
        c->delivered++;
        n++;
    }
    *count = n;
    return n == 0 ? TRAWL_END : TRAWL_OK;
}

static int32_t counter_stats(void *handle, trawl_stats *stats, trawl_error *error) {
    (void)error;
    counter *c = handle;
    memset(stats, 0, sizeof *stats);
    stats->valid = TRAWL_STAT_RECEIVED;
    stats->received = c->delivered;
    return TRAWL_OK;
}

static void counter_close(void *handle) { free(handle); }

static const trawl_source_ops counter_ops = {
    .open = counter_open,
    .info = counter_info,
    .set_filter = counter_set_filter,
    .next_batch = counter_next_batch,
    .stats = counter_stats,
    .interrupt = NULL,
    .close = counter_close,
};

static const trawl_component counter_components[] = {
    { .name = "CounterReader", .prefix = "counter", .modes = TRAWL_MODE_OFFLINE, .ops = &counter_ops, .context = NULL },
};

#ifdef TRAWL_ABI_MINOR
static const trawl_file_magic counter_magics[] = {
    { .component = 0, .length = 8, .bytes = "TRAWLCNT" },
};
#endif
#ifndef COUNTER_RUNTIME
#define COUNTER_RUNTIME TRAWL_RUNTIME_C
#endif
#ifndef COUNTER_RESERVED
#define COUNTER_RESERVED 0
#endif

static const trawl_option counter_options[] = {
    [OPTION_SIZE] = { "size", TRAWL_OPTION_COUNT, "64", "Bytes in each frame", NULL },
    [OPTION_START] = { "start", TRAWL_OPTION_INT, "1000000000", "Timestamp of the first frame, in seconds", NULL },
};

static const trawl_plugin counter_plugin = {
    .abi_version = COUNTER_ABI_VERSION,
#ifdef COUNTER_STRUCT_SIZE
    .struct_size = COUNTER_STRUCT_SIZE,
#else
    .struct_size = sizeof(trawl_plugin),
#endif
    .name = COUNTER_NAME,
    .description = "Counts out synthetic frames (a C plugin)",
    .version = "0.1.0",
    .option_namespace = "Counter",
    .components = counter_components,
    .component_count = 1,
    .option_count = OPTION_COUNT,
    .options = counter_options,
#ifdef TRAWL_ABI_MINOR
    .runtime = COUNTER_RUNTIME,
    .file_magics = counter_magics,
    .file_magic_count = 1,
    .reserved = COUNTER_RESERVED,
#endif
};

#ifndef COUNTER_NO_ENTRY
const trawl_plugin *trawl_plugin_entry(void) { return &counter_plugin; }
#else
const trawl_plugin *some_other_function(void) { return &counter_plugin; }
#endif
