/*
 * trawl_plugin.h - the Trawl packet-source plugin ABI, version 1.1.
 *
 * This header is the only contract between the Trawl core and a packet-source
 * plugin. A plugin is a shared library exporting one C function,
 * TRAWL_PLUGIN_ENTRY_SYMBOL, that returns a static descriptor. Only C types
 * cross the boundary: a plugin written in C (or any language with a C ABI)
 * keeps loading into every trawl of the same major version and of the same or a
 * later minor, whatever compiler built either side. A plugin written in Swift
 * also links the Swift runtime, which has no stable ABI on Linux: it must be
 * built with the same Swift toolchain as the trawl that loads it.
 *
 * Rules every plugin and host follow:
 *   - All strings are NUL-terminated UTF-8 and owned by the side that made them.
 *     Descriptor strings must stay valid while the library is loaded.
 *   - Packet bytes returned by next_batch stay valid until the next call to
 *     next_batch or close on the same handle (zero-copy batches).
 *   - A handle is used by one thread at a time; only `interrupt` may run on
 *     another thread at the same time (see trawl_source_ops).
 *   - Functions returning int32_t return TRAWL_OK or a trawl_status below; on
 *     TRAWL_ERROR they write a one-line reason (and a code) into trawl_error.
 *   - Growth: a minor version only appends fields to the end of a struct that
 *     is not an array element, or defines bits that were zero. The host knows
 *     the plugin's minor and reads only what that minor has; a plugin can rely
 *     on everything its own minor has, because the host refuses newer minors.
 *
 * The full specification, with the growth policy, is docs/plugin-abi.md.
 */
#ifndef TRAWL_PLUGIN_H
#define TRAWL_PLUGIN_H

#include <errno.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version: the major in the low 16 bits, the minor in the high 16 bits, so that
   version 1.0 is the plain 1 it always was. A host loads a plugin of its own major and
   of the same or an older minor; other majors, and newer minors, are refused. */
#define TRAWL_ABI_MAJOR 1u
#define TRAWL_ABI_MINOR 1u
#define TRAWL_ABI_VERSION 0x00010001u /* TRAWL_ABI_MAJOR | TRAWL_ABI_MINOR << 16 */
/* Version 1.0, for a plugin that wants to load into hosts of 1.0 too (it must then
   not touch anything marked "1.1" below). */
#define TRAWL_ABI_VERSION_1_0 0x00000001u

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

/* 1.1: what kind of failure a trawl_error reports, so that the host can react (name the
   missing capability, say which process holds a device). 0 says nothing more. */
typedef enum trawl_error_code {
    TRAWL_ERRC_UNSPECIFIED = 0,
    TRAWL_ERRC_PERMISSION = 1,     /* needs privileges: root, or CAP_NET_RAW / CAP_NET_ADMIN */
    TRAWL_ERRC_NO_SUCH_DEVICE = 2, /* no such interface or port */
    TRAWL_ERRC_NO_SUCH_FILE = 3,   /* no such trace file */
    TRAWL_ERRC_BUSY = 4,           /* in use (a netmap port, a PF_RING cluster) */
    TRAWL_ERRC_NOT_SUPPORTED = 5,  /* the device, the mode or the request is not supported */
    TRAWL_ERRC_INVALID = 6,        /* a bad option value or filter */
    TRAWL_ERRC_NO_MEMORY = 7,      /* memory, or a ring, could not be had */
    TRAWL_ERRC_FORMAT = 8,         /* the input is not in a format the source reads */
    TRAWL_ERRC_IO = 9,             /* a read failed */
    TRAWL_ERRC_UNAVAILABLE = 10    /* something the source needs is missing: a kernel
                                      module, a library, a device node */
} trawl_error_code;

/* The kind of failure an errno value means, for trawl_error.code. */
static inline int32_t trawl_error_code_for_errno(int e) {
    switch (e) {
    case EPERM: case EACCES: return TRAWL_ERRC_PERMISSION;
    case ENODEV: case ENXIO: return TRAWL_ERRC_NO_SUCH_DEVICE;
    case ENOENT: return TRAWL_ERRC_NO_SUCH_FILE;
    case EBUSY: case EADDRINUSE: return TRAWL_ERRC_BUSY;
    case EOPNOTSUPP: case EPROTONOSUPPORT: case EAFNOSUPPORT: case ENOSYS: return TRAWL_ERRC_NOT_SUPPORTED;
    case EINVAL: case ERANGE: case EISDIR: return TRAWL_ERRC_INVALID;
    case ENOMEM: case ENOBUFS: return TRAWL_ERRC_NO_MEMORY;
    case EIO: return TRAWL_ERRC_IO;
    default: return TRAWL_ERRC_UNSPECIFIED;
    }
}

#define TRAWL_ERROR_SIZE 512

/* Filled by the plugin when a call fails. The host zeroes it before each call. */
typedef struct trawl_error {
    char message[TRAWL_ERROR_SIZE]; /* a single line, no trailing newline */
    /* 1.1 */
    int32_t code;                   /* a trawl_error_code */
    int32_t system_errno;           /* the errno behind it, or 0 */
} trawl_error;

/* trawl_packet.flags: what the capture mechanism knows about a packet. Bits not defined
   here are zero; a later minor may define them. */
/* The kernel or the NIC verified the packet's checksums; analysis may skip its own check. */
#define TRAWL_PACKET_CHECKSUM_VERIFIED 0x1u
/* The checksums are not filled in yet (a packet sent with checksum offload, seen on its
   way out); they must not be judged. */
#define TRAWL_PACKET_CHECKSUM_PARTIAL 0x2u

/* One packet of a batch. `data` points into the source's own memory. An array element:
   its 32 bytes are fixed for the whole of major 1 (new per-packet facts are flag bits). */
typedef struct trawl_packet {
    uint64_t timestamp_ns;   /* nanoseconds since the Unix epoch */
    uint32_t captured_length;
    uint32_t wire_length;
    const uint8_t *data;
    uint32_t flags;          /* TRAWL_PACKET_* bits; 0 when the source knows nothing more */
    uint32_t link_type;      /* LINKTYPE_* of this packet when it differs from the source's
                                (a pcapng file with several interfaces); 0: the source's */
} trawl_packet;

/* An array element: fixed for the whole of major 1. */
typedef struct trawl_option {
    const char *name;          /* without namespace: "buffer_size" */
    uint32_t type;             /* trawl_option_type */
    const char *default_value; /* as it would be typed on the command line */
    const char *doc;           /* one line */
    const char *choices;       /* TRAWL_OPTION_ENUM: comma-separated; else NULL */
} trawl_option;

/* A typed option value handed to open(), in the order the plugin declared. An array
   element: fixed for the whole of major 1. */
typedef struct trawl_option_value {
    uint32_t type;
    uint32_t reserved;         /* zero */
    union {
        uint8_t boolean;
        uint64_t count;
        int64_t integer;
        double real;
        const char *string; /* STRING and ENUM; valid during open() only: copy what you keep */
    } value;
} trawl_option_value;

/* 1.1: the host's services, handed to open() in trawl_open_request.host. Valid from open
   until close returns; every function may be called from any thread, also during open.
   They are Zeek's PktSrc::Info, Weird and Error. */
typedef struct trawl_host {
    uint32_t abi_version;      /* the host's TRAWL_ABI_VERSION */
    uint32_t reserved;         /* zero */
    void *context;             /* the first argument of every call below */
    /* A warning for the operator, shown on stderr as "warning: NAME: MESSAGE". */
    void (*warning)(void *context, const char *message);
    /* Something odd in the input (Zeek's weird): counted, and logged in weird.log with
       `name` (an identifier: letters, digits, '_') and `addl` (may be NULL). */
    void (*weird)(void *context, const char *name, const char *addl);
    /* The source has failed and can deliver nothing more (a device that vanished, a
       background reader's error): the host stops reading it after the call in progress
       returns and reports MESSAGE as it reports a failed call. `code` is a
       trawl_error_code. The plugin should also make a blocked next_batch return. */
    void (*error)(void *context, int32_t code, const char *message);
} trawl_host;

typedef struct trawl_open_request {
    const char *path;      /* what follows "prefix::", or the whole name */
    uint32_t mode;         /* exactly one trawl_mode */
    /* Longest time next_batch may block with no packet before it returns
       TRAWL_OK with zero packets; 0 means never block. Live sources only. */
    uint32_t timeout_ms;
    const trawl_option_value *options; /* one per declared option */
    uint32_t option_count;
    uint32_t reserved;     /* zero */
    /* 1.1 */
    const trawl_host *host; /* never NULL for a plugin of minor 1 or later */
} trawl_open_request;

typedef struct trawl_source_info {
    uint32_t link_type;     /* a LINKTYPE_* value as used in pcap files */
    uint32_t snaplen;
    uint32_t netmask;       /* IPv4 netmask of a live interface, host order; 0 if unknown */
    int32_t selectable_fd;  /* pollable for readability, or -1 */
    uint32_t is_live;
    uint32_t reserved;      /* zero */
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

/* The source lifecycle. Every pointer is required except `interrupt`.
   Threads: open, info, set_filter, next_batch, stats and close of one handle are called
   by one thread at a time (not always the same thread). `interrupt` is called from
   another ordinary thread (never from a signal handler), possibly while next_batch,
   set_filter or stats runs on the handle, but never before open has returned it nor
   once close has begun. Different handles may be used on different threads at once. */
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
    /* Make a blocked next_batch return soon. May be NULL. */
    void (*interrupt)(void *handle);
    void (*close)(void *handle);
} trawl_source_ops;

/* An array element: fixed for the whole of major 1. */
typedef struct trawl_component {
    const char *name;    /* "PcapReader" */
    const char *prefix;  /* "pcap": selected by "pcap::NAME" */
    uint32_t modes;      /* trawl_mode bits */
    uint32_t reserved;   /* zero */
    const trawl_source_ops *ops;
    void *context;       /* handed back to ops->open untouched */
} trawl_component;

#define TRAWL_MAGIC_SIZE 16

/* 1.1: the first bytes of a trace file a component reads. The host picks the component
   for a file named without a prefix by them (the longest match wins). An array element:
   fixed for the whole of major 1. */
typedef struct trawl_file_magic {
    uint32_t component;  /* index into trawl_plugin.components */
    uint32_t length;     /* 1..TRAWL_MAGIC_SIZE bytes of `bytes`, at the start of the file */
    uint8_t bytes[TRAWL_MAGIC_SIZE];
} trawl_file_magic;

/* trawl_plugin.runtime: what a plugin needs beside the C ABI. */
#define TRAWL_RUNTIME_C "c"
/* A Swift plugin names its toolchain, "swift-6.3": the host must have been built by the
   same one, or it refuses the plugin. */
#define TRAWL_RUNTIME_SWIFT_PREFIX "swift-"

typedef struct trawl_plugin {
    uint32_t abi_version;      /* TRAWL_ABI_VERSION as the plugin was built */
    uint32_t struct_size;      /* sizeof(trawl_plugin) as the plugin was built */
    const char *name;          /* "Trawl::Pcap" */
    const char *description;   /* "Packet acquisition via libpcap" */
    const char *version;       /* "1.0.0" */
    const char *option_namespace; /* "Pcap": options are set as Pcap::NAME=VALUE */
    const trawl_component *components;
    uint32_t component_count;
    uint32_t option_count;
    const trawl_option *options;
    /* 1.1 */
    const char *runtime;       /* TRAWL_RUNTIME_C, or NULL, or "swift-X.Y" */
    const trawl_file_magic *file_magics;
    uint32_t file_magic_count;
    uint32_t reserved;         /* zero */
} trawl_plugin;

typedef const trawl_plugin *(*trawl_plugin_entry_fn)(void);

/* The size of trawl_plugin in each minor of major 1 (the host checks struct_size). */
#define TRAWL_PLUGIN_SIZE_1_0 64u
#define TRAWL_PLUGIN_SIZE_1_1 88u

#ifdef __cplusplus
}
#endif

#endif /* TRAWL_PLUGIN_H */
