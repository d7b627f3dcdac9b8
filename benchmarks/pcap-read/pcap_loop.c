/* The baseline for benchmarks/pcap-read: the smallest useful libpcap reader. It counts
 * packets and wire bytes and tracks the first and last timestamp, as trawl's summary does. */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>

int main(int argc, char **argv) {
    char err[PCAP_ERRBUF_SIZE];
    if (argc != 2) { fprintf(stderr, "usage: pcap_loop FILE\n"); return 2; }
    pcap_t *p = pcap_open_offline_with_tstamp_precision(argv[1], PCAP_TSTAMP_PRECISION_NANO, err);
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
