/* A stand-in for libpfring, built by the tests and loaded by Trawl::PF_Ring through
   TRAWL_PFRING_LIBRARY. It implements the calls the plugin makes, records each in the
   file named by PFRING_DOUBLE_LOG (one line per call, with its arguments), and feeds
   PFRING_DOUBLE_PACKETS synthetic Ethernet/IPv4/UDP frames (default 100), numbered from
   0 in the payload; odd frames go to UDP port 7000, even ones to 7001. Setting
   PFRING_DOUBLE_FAIL to open, cluster or filter makes that call fail. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

struct double_ring {
    char device[64];
    unsigned caplen;
    int enabled;
    long delivered, total;
    int port_filter; /* 0: none; else only frames to this UDP port */
};

struct pkthdr { struct timeval ts; uint32_t caplen, len; uint64_t timestamp_ns; };

static void note(const char *format, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static void note(const char *format, ...) {
    const char *path = getenv("PFRING_DOUBLE_LOG");
    if (!path) return;
    FILE *log = fopen(path, "a");
    if (!log) return;
    va_list args;
    va_start(args, format);
    vfprintf(log, format, args);
    va_end(args);
    fputc('\n', log);
    fclose(log);
}

static int failing(const char *what) {
    const char *fail = getenv("PFRING_DOUBLE_FAIL");
    return fail && strcmp(fail, what) == 0;
}

void *pfring_open(const char *device, uint32_t caplen, uint32_t flags) {
    note("open %s caplen=%u flags=%u", device, caplen, flags);
    if (failing("open")) { errno = ENODEV; return NULL; }
    struct double_ring *ring = calloc(1, sizeof *ring);
    snprintf(ring->device, sizeof ring->device, "%s", device);
    ring->caplen = caplen;
    const char *count = getenv("PFRING_DOUBLE_PACKETS");
    ring->total = count ? atol(count) : 100;
    return ring;
}

int pfring_set_application_name(void *ring, char *name) { (void)ring; note("name %s", name); return 0; }
int pfring_set_socket_mode(void *ring, uint32_t mode) { (void)ring; note("mode %u", mode); return 0; }

int pfring_set_cluster(void *ring, uint32_t id, uint32_t type) {
    (void)ring;
    note("cluster %u type=%u", id, type);
    return failing("cluster") ? -1 : 0;
}

/* Understands "udp port N" and "" only: enough to see that the filter reaches the library. */
int pfring_set_bpf_filter(void *handle, char *filter) {
    struct double_ring *ring = handle;
    note("filter %s", filter);
    if (failing("filter")) return -1;
    int port;
    if (sscanf(filter, "udp port %d", &port) == 1) ring->port_filter = port;
    return 0;
}

int pfring_enable_ring(void *handle) {
    struct double_ring *ring = handle;
    ring->enabled = 1;
    note("enable");
    return 0;
}

static unsigned frame(long n, unsigned char *out) {
    static const unsigned char head[] = {
        2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00,               /* Ethernet, IPv4 */
        0x45, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, /* IPv4, UDP */
        0x9c, 0x40, 0, 0, 0, 12, 0, 0,                                /* from port 40000, no UDP checksum */
    };
    memcpy(out, head, sizeof head);
    uint32_t sum = 0; /* the IPv4 header checksum, so that analysis accepts the frame */
    for (int i = 14; i < 34; i += 2) sum += (unsigned)(out[i] << 8 | out[i + 1]);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    out[24] = (unsigned char)(~sum >> 8);
    out[25] = (unsigned char)(~sum & 0xff);
    unsigned port = 7000 + (n % 2 == 0);
    out[36] = port >> 8;
    out[37] = port & 0xff;
    memcpy(out + sizeof head, &n, 4);
    return sizeof head + 4;
}

int pfring_recv(void *handle, unsigned char **buffer, unsigned buffer_length, struct pkthdr *header, uint8_t wait) {
    struct double_ring *ring = handle;
    (void)wait;
    if (!ring->enabled) return -1;
    static unsigned char own[256];
    while (ring->delivered < ring->total) {
        long n = ring->delivered++;
        unsigned char *out = buffer_length > 0 ? *buffer : own;
        unsigned length = frame(n, out);
        if (ring->port_filter && (unsigned)((out[36] << 8) | out[37]) != (unsigned)ring->port_filter) continue;
        if (buffer_length == 0) *buffer = own;
        header->caplen = length < ring->caplen ? length : ring->caplen;
        header->len = length;
        header->ts.tv_sec = 1700000000 + n;
        header->ts.tv_usec = 0;
        header->timestamp_ns = 1700000000000000000ull + (uint64_t)n * 1000;
        return 1;
    }
    return 0;
}

int pfring_poll(void *ring, unsigned wait_ms) {
    (void)ring;
    usleep((wait_ms < 20 ? wait_ms : 20) * 1000);
    return 0;
}

struct stat_block { uint64_t received, dropped, shunt; };
int pfring_stats(void *handle, struct stat_block *stats) {
    struct double_ring *ring = handle;
    stats->received = (uint64_t)ring->delivered;
    stats->dropped = 7;
    note("stats");
    return 0;
}

void pfring_breakloop(void *ring) { (void)ring; }

void pfring_close(void *ring) {
    note("close");
    free(ring);
}
