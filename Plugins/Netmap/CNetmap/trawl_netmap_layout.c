/* Compile-time checks that the structures in trawl_netmap.h have netmap's layout. */
#include <stddef.h>
#include "trawl_netmap.h"

_Static_assert(sizeof(struct trawl_nmreq_header) == 88, "nmreq_header");
_Static_assert(sizeof(struct trawl_nmreq_register) == 48, "nmreq_register");
_Static_assert(offsetof(struct trawl_nmreq_register, mode) == 32, "nmreq_register.nr_mode");
_Static_assert(sizeof(struct trawl_nmreq_legacy) == 60, "nmreq (legacy)");
_Static_assert(sizeof(struct trawl_netmap_slot) == 16, "netmap_slot");
_Static_assert(offsetof(struct trawl_netmap_ring, head) == 20, "netmap_ring.head");
_Static_assert(offsetof(struct trawl_netmap_ring, timestamp) == 40, "netmap_ring.ts");
_Static_assert(offsetof(struct trawl_netmap_ring, slots) == 256, "netmap_ring.slot");
_Static_assert(offsetof(struct trawl_netmap_if, host_tx_rings) == 36, "netmap_if.ni_host_tx_rings");
_Static_assert(offsetof(struct trawl_netmap_if, ring_offsets) == 56, "netmap_if.ring_ofs");
_Static_assert(TRAWL_NIOCCTRL == 0xc0586997u, "NIOCCTRL");
_Static_assert(offsetof(struct trawl_netmap_ring, buffer_offset) == TRAWL_RING_BUFFER_OFFSET, "buf_ofs");
_Static_assert(offsetof(struct trawl_netmap_ring, slot_count) == TRAWL_RING_SLOT_COUNT, "num_slots");
_Static_assert(offsetof(struct trawl_netmap_ring, buffer_size) == TRAWL_RING_BUFFER_SIZE, "nr_buf_size");
_Static_assert(offsetof(struct trawl_netmap_ring, head) == TRAWL_RING_HEAD, "head");
_Static_assert(offsetof(struct trawl_netmap_ring, cur) == TRAWL_RING_CUR, "cur");
_Static_assert(offsetof(struct trawl_netmap_ring, tail) == TRAWL_RING_TAIL, "tail");
_Static_assert(offsetof(struct trawl_netmap_ring, flags) == TRAWL_RING_FLAGS, "flags");
_Static_assert(offsetof(struct trawl_netmap_ring, slots) == TRAWL_RING_SLOTS, "slot");
