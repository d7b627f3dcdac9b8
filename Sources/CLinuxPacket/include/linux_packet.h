/*
 * linux_packet.h - what the AF_PACKET plugin needs from the Linux headers, in a form Swift
 * can import: the TPACKET_V3 ring structures, and small functions for what Swift cannot
 * express (variadic ioctl, atomic block-status access, macros).
 */
#ifndef TRAWL_LINUX_PACKET_H
#define TRAWL_LINUX_PACKET_H

#include <stdint.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <linux/if_arp.h>
#include <linux/filter.h>
#include <linux/net_tstamp.h>
#include <sys/socket.h>
#include <sys/eventfd.h>

/* Status of a ring block, read with acquire ordering: the kernel's writes to the block
   happen before it sets TP_STATUS_USER. */
static inline uint32_t trawl_block_status(const void *block) {
    const struct tpacket_block_desc *desc = block;
    return __atomic_load_n(&desc->hdr.bh1.block_status, __ATOMIC_ACQUIRE);
}

/* Hands a block back to the kernel, after every read of it (release ordering). */
static inline void trawl_block_release(void *block) {
    struct tpacket_block_desc *desc = block;
    __atomic_store_n(&desc->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
}

static inline const struct tpacket_hdr_v1 *trawl_block_header(const void *block) {
    return &((const struct tpacket_block_desc *)block)->hdr.bh1;
}

/* ioctl wrappers: 0 on success, -1 with errno set. */
int trawl_interface_arp_type(int fd, const char *name, int *arp_type);
int trawl_enable_hw_timestamping(int fd, const char *name);

#endif
