/* The baseline for benchmarks/pcap-read: the smallest useful libpcap reader. It counts
 * packets and wire bytes and tracks the first and last timestamp, as trawl's summary does.
 *
 *   pcap_loop FILE          libpcap opens the file (default 4 KiB stdio buffer)
 *   pcap_loop -b FILE       the file gets a 1 MiB stdio buffer, as Trawl::Pcap gives it,
 *                           so the comparison isolates the cost of trawl's own layers */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static char stream_buffer[1 << 20];

int main(int argc, char **argv) {
    char err[PCAP_ERRBUF_SIZE];
    int big_buffer = argc == 3 && strcmp(argv[1], "-b") == 0;
    if (argc != 2 && !big_buffer) { fprintf(stderr, "usage: pcap_loop [-b] FILE\n"); return 2; }
    const char *path = argv[argc - 1];
    pcap_t *p;
    if (big_buffer) {
        FILE *f = fopen(path, "rb");
        if (!f) { perror(path); return 1; }
        setvbuf(f, stream_buffer, _IOFBF, sizeof stream_buffer);
        p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, err);
    } else {
        p = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, err);
    }
    if (!p) { fprintf(stderr, "pcap_loop: %s\n", err); return 1; }
    struct pcap_pkthdr *h;
    const u_char *data;
    uint64_t packets = 0, bytes = 0, first = UINT64_MAX, last = 0;
    int rc;
    while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
        uint64_t ts = (uint64_t)h->ts.tv_sec * 1000000000u + (uint64_t)h->ts.tv_usec;
        packets++;
        bytes += h->len;
        if (ts < first) first = ts;
        if (ts > last) last = ts;
    }
    if (rc == PCAP_ERROR) { fprintf(stderr, "pcap_loop: %s\n", pcap_geterr(p)); return 1; }
    printf("packets: %llu\nbytes: %llu\n", (unsigned long long)packets, (unsigned long long)bytes);
    pcap_close(p);
    return 0;
}
