/* The ABI is a header; this file pins its layouts, so that a change that would move a
   field a built plugin relies on fails the build instead of corrupting memory at run
   time. The figures are for LP64 Linux (x86_64, aarch64), the platforms trawl builds on.
   A new minor appends fields: add their offsets here, never change the ones above. */
#include <stddef.h>
#include "trawl_plugin.h"

#define PIN_SIZE(type, size) _Static_assert(sizeof(type) == (size), #type " is " #size " bytes")
#define PIN(type, field, offset) \
    _Static_assert(offsetof(type, field) == (offset), #type "." #field " is at " #offset)

_Static_assert(TRAWL_ABI_VERSION == (TRAWL_ABI_MAJOR | TRAWL_ABI_MINOR << 16), "TRAWL_ABI_VERSION spells major.minor");
_Static_assert(TRAWL_ABI_VERSION_1_0 == 1u, "version 1.0 is the plain 1 of the first release");

PIN_SIZE(trawl_error, 520);
PIN(trawl_error, message, 0);
PIN(trawl_error, code, 512);              /* 1.1 */
PIN(trawl_error, system_errno, 516);      /* 1.1 */

PIN_SIZE(trawl_packet, 32);               /* an array element: fixed */
PIN(trawl_packet, timestamp_ns, 0);
PIN(trawl_packet, captured_length, 8);
PIN(trawl_packet, wire_length, 12);
PIN(trawl_packet, data, 16);
PIN(trawl_packet, flags, 24);
PIN(trawl_packet, link_type, 28);

PIN_SIZE(trawl_option, 40);               /* an array element: fixed */
PIN(trawl_option, name, 0);
PIN(trawl_option, type, 8);
PIN(trawl_option, default_value, 16);
PIN(trawl_option, doc, 24);
PIN(trawl_option, choices, 32);

PIN_SIZE(trawl_option_value, 16);         /* an array element: fixed */
PIN(trawl_option_value, type, 0);
PIN(trawl_option_value, reserved, 4);
PIN(trawl_option_value, value, 8);

PIN_SIZE(trawl_host, 40);                 /* 1.1 */
PIN(trawl_host, abi_version, 0);
PIN(trawl_host, reserved, 4);
PIN(trawl_host, context, 8);
PIN(trawl_host, warning, 16);
PIN(trawl_host, weird, 24);
PIN(trawl_host, error, 32);

PIN_SIZE(trawl_open_request, 40);
PIN(trawl_open_request, path, 0);
PIN(trawl_open_request, mode, 8);
PIN(trawl_open_request, timeout_ms, 12);
PIN(trawl_open_request, options, 16);
PIN(trawl_open_request, option_count, 24);
PIN(trawl_open_request, reserved, 28);
PIN(trawl_open_request, host, 32);        /* 1.1 */

PIN_SIZE(trawl_source_info, 24);
PIN(trawl_source_info, link_type, 0);
PIN(trawl_source_info, snaplen, 4);
PIN(trawl_source_info, netmask, 8);
PIN(trawl_source_info, selectable_fd, 12);
PIN(trawl_source_info, is_live, 16);
PIN(trawl_source_info, reserved, 20);

PIN_SIZE(trawl_stats, 48);
PIN(trawl_stats, valid, 0);
PIN(trawl_stats, received, 8);
PIN(trawl_stats, dropped, 16);
PIN(trawl_stats, if_dropped, 24);
PIN(trawl_stats, filtered, 32);
PIN(trawl_stats, bytes, 40);

PIN_SIZE(trawl_source_ops, 56);
PIN(trawl_source_ops, open, 0);
PIN(trawl_source_ops, info, 8);
PIN(trawl_source_ops, set_filter, 16);
PIN(trawl_source_ops, next_batch, 24);
PIN(trawl_source_ops, stats, 32);
PIN(trawl_source_ops, interrupt, 40);
PIN(trawl_source_ops, close, 48);

PIN_SIZE(trawl_component, 40);            /* an array element: fixed */
PIN(trawl_component, name, 0);
PIN(trawl_component, prefix, 8);
PIN(trawl_component, modes, 16);
PIN(trawl_component, reserved, 20);
PIN(trawl_component, ops, 24);
PIN(trawl_component, context, 32);

PIN_SIZE(trawl_file_magic, 24);           /* 1.1, an array element: fixed */
PIN(trawl_file_magic, component, 0);
PIN(trawl_file_magic, length, 4);
PIN(trawl_file_magic, bytes, 8);

PIN_SIZE(trawl_plugin, TRAWL_PLUGIN_SIZE_1_1);
PIN(trawl_plugin, abi_version, 0);
PIN(trawl_plugin, struct_size, 4);
PIN(trawl_plugin, name, 8);
PIN(trawl_plugin, description, 16);
PIN(trawl_plugin, version, 24);
PIN(trawl_plugin, option_namespace, 32);
PIN(trawl_plugin, components, 40);
PIN(trawl_plugin, component_count, 48);
PIN(trawl_plugin, option_count, 52);
PIN(trawl_plugin, options, 56);
PIN(trawl_plugin, runtime, TRAWL_PLUGIN_SIZE_1_0); /* 1.1 starts where 1.0 ended */
PIN(trawl_plugin, file_magics, 72);
PIN(trawl_plugin, file_magic_count, 80);
PIN(trawl_plugin, reserved, 84);
