/* The part of netmap's kernel interface Trawl::Netmap uses, written out here so that the
   plugin builds without netmap's headers: the control requests (the NIOCCTRL request
   header with a register body, and the legacy NIOCREGIF request) and the layout of the
   shared memory (interface, rings, slots). Layouts follow netmap's net/netmap.h for API
   versions 11 to 15; trawl_netmap_layout.c checks the sizes and offsets at compile time. */
#ifndef TRAWL_NETMAP_H
#define TRAWL_NETMAP_H
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/time.h>

#define TRAWL_NETMAP_API 14          /* requested; kernels accept a range (13..15 today) */
#define TRAWL_NETMAP_LEGACY_API 11

/* Registration modes (nr_mode). */
enum {
    TRAWL_NR_REG_ALL_NIC = 1,
    TRAWL_NR_REG_SW = 2,
    TRAWL_NR_REG_NIC_SW = 3,
    TRAWL_NR_REG_ONE_NIC = 4,
};

/* Registration flags (nr_flags). */
#define TRAWL_NR_MONITOR_TX 0x100u
#define TRAWL_NR_MONITOR_RX 0x200u
#define TRAWL_NR_ZCOPY_MON 0x400u
#define TRAWL_NR_EXCLUSIVE 0x800u

/* Ring flags. */
#define TRAWL_NR_TIMESTAMP 0x2u
/* Slot flags. */
#define TRAWL_NS_MOREFRAG 0x20u

#define TRAWL_NETMAP_REQ_REGISTER 1
#define TRAWL_NETMAP_REQ_NAME_SIZE 64

/* Header of every NIOCCTRL request. */
struct trawl_nmreq_header {
    uint16_t version;
    uint16_t request_type;
    uint32_t reserved;
    char name[TRAWL_NETMAP_REQ_NAME_SIZE];
    uint64_t options;   /* pointer to a chain of options, 0 for none */
    uint64_t body;      /* pointer to the request's body */
};

/* Body of a register request: what to bind; the kernel fills in the rest. */
struct trawl_nmreq_register {
    uint64_t offset;    /* out: the interface descriptor's offset in the shared region */
    uint64_t memory_size;
    uint32_t tx_slots, rx_slots;
    uint16_t tx_rings, rx_rings;
    uint16_t memory_id;
    uint16_t ring_id;   /* the ring, with TRAWL_NR_REG_ONE_NIC */
    uint32_t mode;      /* TRAWL_NR_REG_* */
    uint32_t extra_buffers;
    uint64_t flags;     /* TRAWL_NR_* */
};

/* The legacy request (NIOCREGIF), for kernels without NIOCCTRL. */
struct trawl_nmreq_legacy {
    char name[16];
    uint32_t version;
    uint32_t offset;
    uint32_t memory_size;
    uint32_t tx_slots, rx_slots;
    uint16_t tx_rings, rx_rings;
    uint16_t ring_id;
    uint16_t command;
    uint16_t argument1, argument2;
    uint32_t argument3;
    uint32_t flags;     /* mode in the low 4 bits, TRAWL_NR_* above */
    uint32_t spare;
};

#define TRAWL_NIOCCTRL _IOWR('i', 151, struct trawl_nmreq_header)
#define TRAWL_NIOCREGIF _IOWR('i', 146, struct trawl_nmreq_legacy)
#define TRAWL_NIOCRXSYNC _IO('i', 149)

/* The request numbers as constants Swift can see (it cannot expand _IOWR). */
static const unsigned long trawl_netmap_ctrl_request = TRAWL_NIOCCTRL;
static const unsigned long trawl_netmap_register_legacy_request = TRAWL_NIOCREGIF;
static const unsigned long trawl_netmap_rx_sync_request = TRAWL_NIOCRXSYNC;

/* Shared memory, as the kernel lays it out. All positions are offsets, so that the same
   region means the same thing mapped anywhere. */

/* One buffer descriptor. */
struct trawl_netmap_slot {
    uint32_t buffer_index;
    uint16_t length;
    uint16_t flags;
    uint64_t pointer;
};

/* One ring: a circular array of slots after a 256-byte header. The user owns the slots
   from head up to (not including) tail; moving head returns slots to the kernel. */
struct trawl_netmap_ring {
    int64_t buffer_offset;      /* from this header to buffer 0 */
    uint32_t slot_count;
    uint32_t buffer_size;
    uint16_t ring_id;
    uint16_t direction;         /* 0 tx, 1 rx */
    uint32_t head, cur, tail;
    uint32_t flags;
    struct timeval timestamp;   /* of the last sync, with TRAWL_NR_TIMESTAMP */
    uint8_t reserved[128] __attribute__((aligned(128)));
    struct trawl_netmap_slot slots[];
};

/* Where the ring fields are, for Swift, which cannot import the ring structure (its
   128-byte alignment); trawl_netmap_layout.c checks they agree with it. */
enum {
    TRAWL_RING_BUFFER_OFFSET = 0,   /* int64_t */
    TRAWL_RING_SLOT_COUNT = 8,      /* uint32_t */
    TRAWL_RING_BUFFER_SIZE = 12,    /* uint32_t */
    TRAWL_RING_HEAD = 20,           /* uint32_t */
    TRAWL_RING_CUR = 24,            /* uint32_t */
    TRAWL_RING_TAIL = 28,           /* uint32_t */
    TRAWL_RING_FLAGS = 32,          /* uint32_t */
    TRAWL_RING_SLOTS = 256,         /* the first slot */
};

/* The interface descriptor of a bound port. ring_offsets[] lists, from this descriptor:
   the NIC tx rings, the host tx rings, the NIC rx rings, the host rx rings. API 14 and
   later count the host rings in host_tx_rings/host_rx_rings; before, those words were
   spare (0) and there was one host ring pair. */
struct trawl_netmap_if {
    char name[16];
    uint32_t version;
    uint32_t flags;
    uint32_t tx_rings;
    uint32_t rx_rings;
    uint32_t buffers_head;
    uint32_t host_tx_rings;
    uint32_t host_rx_rings;
    uint32_t spare[3];
    int64_t ring_offsets[];
};

#endif
