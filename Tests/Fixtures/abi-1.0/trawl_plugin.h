/*
 * FROZEN: the header as plugin ABI 1.0 shipped it (trawl 0.x before 1.1). Tests build a
 * plugin against it to prove that plugins of older minors keep loading. Never edit.
 *
 * trawl_plugin.h - the Trawl packet-source plugin ABI.
 *
 * This header is the only contract between the Trawl core and a packet-source
 * plugin. A plugin is a shared library exporting one C function,
 * TRAWL_PLUGIN_ENTRY_SYMBOL, that returns a static descriptor. Only C types
 * cross the boundary, so a plugin built by another compiler, another Swift
 * version, or written in C keeps loading as long as it speaks this ABI version.
 *
 * Rules every plugin and host follow:
 *   - All strings are NUL-terminated UTF-8 and owned by the side that made them.
 *     Descriptor strings must stay valid while the library is loaded.
 *   - Packet bytes returned by next_batch stay valid until the next call to
 *     next_batch or close on the same handle (zero-copy batches).
 *   - A handle is used by one thread at a time, except `interrupt`, which may be
 *     called from any thread or from a signal handler.
 *   - Functions returning int32_t return TRAWL_OK or a trawl_status below; on
 *     TRAWL_ERROR they write a one-line reason into the trawl_error buffer.
 *
 * The full specification is docs/plugin-abi.md.
 */
#ifndef TRAWL_PLUGIN_H
#define TRAWL_PLUGIN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change. The host refuses other versions. */
#define TRAWL_ABI_VERSION 1u

/* The one symbol a plugin exports: const trawl_plugin *trawl_plugin_entry(void); */
#define TRAWL_PLUGIN_ENTRY_SYMBOL "trawl_plugin_entry"

typedef enum trawl_status {
    TRAWL_OK = 0,
    TRAWL_END = 1,     /* next_batch: offline input is exhausted */
    TRAWL_ERROR = -1   /* reason in the trawl_error buffer */
} trawl_status;

/* Where a component can read from. */
typedef enum trawl_mode {
    TRAWL_MODE_LIVE = 1u,    /* a live interface */
    TRAWL_MODE_OFFLINE = 2u  /* a trace file */
} trawl_mode;

/* Option value types, named as Zeek names them. */
typedef enum trawl_option_type {
    TRAWL_OPTION_BOOL = 1,   /* T/F, true/false */
    TRAWL_OPTION_COUNT = 2,  /* unsigned 64-bit */
    TRAWL_OPTION_INT = 3,    /* signed 64-bit */
    TRAWL_OPTION_DOUBLE = 4,
    TRAWL_OPTION_STRING = 5,
    TRAWL_OPTION_ENUM = 6    /* a string, one of `choices` */
} trawl_option_type;

#define TRAWL_ERROR_SIZE 512

/* Filled by the plugin when a call fails; a single line, no trailing newline. */
typedef struct trawl_error {
    char message[TRAWL_ERROR_SIZE];
} trawl_error;

/* trawl_packet.flags: what the capture mechanism knows about a packet. */
/* The kernel or the NIC verified the packet's checksums; analysis may skip its own check. */
#define TRAWL_PACKET_CHECKSUM_VERIFIED 0x1u
/* The checksums are not filled in yet (a packet sent with checksum offload, seen on its
   way out); they must not be judged. */
#define TRAWL_PACKET_CHECKSUM_PARTIAL 0x2u

/* One packet of a batch. `data` points into the source's own memory. */
typedef struct trawl_packet {
    uint64_t timestamp_ns;   /* nanoseconds since the Unix epoch */
    uint32_t captured_length;
    uint32_t wire_length;
    const uint8_t *data;
    uint32_t flags;          /* TRAWL_PACKET_* bits; 0 when the source knows nothing more */
    uint32_t link_type;      /* LINKTYPE_* of this packet when it differs from the source's
                                (a pcapng file with several interfaces); 0: the source's */
} trawl_packet;

typedef struct trawl_option {
    const char *name;          /* without namespace: "buffer_size" */
    uint32_t type;             /* trawl_option_type */
    const char *default_value; /* as it would be typed on the command line */
    const char *doc;           /* one line */
    const char *choices;       /* TRAWL_OPTION_ENUM: comma-separated; else NULL */
} trawl_option;

/* A typed option value handed to open(), in the order the plugin declared. */
typedef struct trawl_option_value {
    uint32_t type;
    uint32_t reserved;
    union {
        uint8_t boolean;
        uint64_t count;
        int64_t integer;
        double real;
        const char *string; /* STRING and ENUM; valid during open() only */
    } value;
} trawl_option_value;

typedef struct trawl_open_request {
    const char *path;      /* what follows "prefix::", or the whole name */
    uint32_t mode;         /* exactly one trawl_mode */
    /* Longest time next_batch may block with no packet before it returns
       TRAWL_OK with zero packets; 0 means never block. Live sources only. */
    uint32_t timeout_ms;
    const trawl_option_value *options; /* one per declared option */
    uint32_t option_count;
    uint32_t reserved;
} trawl_open_request;

typedef struct trawl_source_info {
    uint32_t link_type;     /* a LINKTYPE_* value as used in pcap files */
    uint32_t snaplen;
    uint32_t netmask;       /* IPv4 netmask of a live interface, host order; 0 if unknown */
    int32_t selectable_fd;  /* pollable for readability, or -1 */
    uint32_t is_live;
    uint32_t reserved;
} trawl_source_info;

/* Bit set in trawl_stats.valid for each field the source really measured. */
#define TRAWL_STAT_RECEIVED 0x1u
#define TRAWL_STAT_DROPPED 0x2u
#define TRAWL_STAT_IF_DROPPED 0x4u
#define TRAWL_STAT_FILTERED 0x8u
#define TRAWL_STAT_BYTES 0x10u

typedef struct trawl_stats {
    uint64_t valid;       /* TRAWL_STAT_* bits */
    uint64_t received;    /* seen by the capture mechanism */
    uint64_t dropped;     /* dropped by the kernel for lack of buffer */
    uint64_t if_dropped;  /* dropped by the interface or driver */
    uint64_t filtered;    /* passed the filter */
    uint64_t bytes;       /* bytes seen by the capture mechanism */
} trawl_stats;

/* The source lifecycle. Every pointer is required except `interrupt`. */
typedef struct trawl_source_ops {
    int32_t (*open)(void *component_context, const trawl_open_request *request,
                    void **handle, trawl_error *error);
    void (*info)(void *handle, trawl_source_info *info);
    /* Compile and install a BPF filter (tcpdump syntax). */
    int32_t (*set_filter)(void *handle, const char *expression, trawl_error *error);
    /* Fill up to `capacity` packets; *count may be 0 after a live timeout. */
    int32_t (*next_batch)(void *handle, trawl_packet *packets, uint32_t capacity,
                          uint32_t *count, trawl_error *error);
    int32_t (*stats)(void *handle, trawl_stats *stats, trawl_error *error);
    /* Make a blocked next_batch return soon. Async-signal-safe. May be NULL. */
    void (*interrupt)(void *handle);
    void (*close)(void *handle);
} trawl_source_ops;

typedef struct trawl_component {
    const char *name;    /* "PcapReader" */
    const char *prefix;  /* "pcap": selected by "pcap::NAME" */
    uint32_t modes;      /* trawl_mode bits */
    uint32_t reserved;
    const trawl_source_ops *ops;
    void *context;       /* handed back to ops->open untouched */
} trawl_component;

typedef struct trawl_plugin {
    uint32_t abi_version;      /* TRAWL_ABI_VERSION */
    uint32_t struct_size;      /* sizeof(trawl_plugin) as the plugin was built */
    const char *name;          /* "Trawl::Pcap" */
    const char *description;   /* "Packet acquisition via libpcap" */
    const char *version;       /* "1.0.0" */
    const char *option_namespace; /* "Pcap": options are set as Pcap::NAME=VALUE */
    const trawl_component *components;
    uint32_t component_count;
    uint32_t option_count;
    const trawl_option *options;
} trawl_plugin;

typedef const trawl_plugin *(*trawl_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* TRAWL_PLUGIN_H */
