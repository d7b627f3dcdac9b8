#include "linux_packet.h"
#include <string.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>

static void fill_name(struct ifreq *request, const char *name) {
    memset(request, 0, sizeof *request);
    strncpy(request->ifr_name, name, IFNAMSIZ - 1);
}

int trawl_interface_arp_type(int fd, const char *name, int *arp_type) {
    struct ifreq request;
    fill_name(&request, name);
    if (ioctl(fd, SIOCGIFHWADDR, &request) < 0) return -1;
    *arp_type = request.ifr_hwaddr.sa_family;
    return 0;
}

int trawl_enable_hw_timestamping(int fd, const char *name) {
    struct hwtstamp_config config;
    memset(&config, 0, sizeof config);
    config.tx_type = HWTSTAMP_TX_OFF;
    config.rx_filter = HWTSTAMP_FILTER_ALL;
    struct ifreq request;
    fill_name(&request, name);
    request.ifr_data = (void *)&config;
    return ioctl(fd, SIOCSHWTSTAMP, &request);
}
