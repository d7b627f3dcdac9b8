#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora (fuzz/corpus/TARGET/): small, valid inputs that reach
every analyzer, so that mutation starts deep. Run it again after changing an input format:

    python3 fuzz/seeds.py
"""
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def v4(text):
    return bytes(int(x) for x in text.split("."))


def v6(last):
    return bytes.fromhex("20010db8000000000000000000000000")[:15] + bytes([last])


def transport(proto, src, dst, segment, at):
    pseudo = src + dst + (struct.pack("!BBH", 0, proto, len(segment)) if len(src) == 4
                          else struct.pack("!I3xB", len(segment), proto))
    s = bytearray(segment)
    s[at:at + 2] = struct.pack("!H", checksum(pseudo + bytes(segment)))
    return bytes(s)


def udp(sport, dport, payload, src, dst):
    return transport(17, src, dst, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload, 6)


def tcp(sport, dport, flags, src, dst, seq=1, ack=0, payload=b""):
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 8192, 0, 0)
    return transport(6, src, dst, header + payload, 16)


def ipv4(src, dst, proto, payload, ident=1, frag=0x4000):
    header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, 64, proto, 0, src, dst))
    header[10:12] = struct.pack("!H", checksum(bytes(header)))
    return bytes(header) + payload


def ipv6(src, dst, nxt, payload):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), nxt, 64, src, dst) + payload


A, B = v4("10.0.0.1"), v4("10.0.0.2")
UDP4 = ipv4(A, B, 17, udp(1234, 53, b"query", A, B))
TCP4 = ipv4(A, B, 6, tcp(40000, 80, 0x02, A, B))
UDP6 = ipv6(v6(1), v6(2), 17, udp(1234, 53, b"query", v6(1), v6(2)))
ICMP4 = ipv4(A, B, 1, bytes([8, 0]) + struct.pack("!H", checksum(bytes([8, 0, 0, 0, 0, 1, 0, 1]))) + bytes([0, 1, 0, 1]))
MACS = bytes([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2])


def eth(kind, payload):
    return MACS + struct.pack("!H", kind) + payload


def ethertype(ip):
    return 0x86DD if ip[0] >> 4 == 6 else 0x0800


def snap(kind, payload):
    return bytes([0xAA, 0xAA, 3, 0, 0, 0]) + struct.pack("!H", kind) + payload


def outer_udp(sport, dport, payload):
    return eth(0x0800, ipv4(v4("198.51.100.1"), v4("198.51.100.2"), 17,
                            udp(sport, dport, payload, v4("198.51.100.1"), v4("198.51.100.2"))))


def outer_ip(proto, payload):
    return eth(0x0800, ipv4(v4("198.51.100.1"), v4("198.51.100.2"), proto, payload))


LINK_TYPES = [1, 101, 113, 276, 105, 127, 239, 0, 108, 9, 50, 10, 12, 14, 228, 229]


def analysis_input(link_type, frames, flags=0b0011):
    out = bytes([LINK_TYPES.index(link_type), flags])
    for frame in frames:
        out += struct.pack("!HB", len(frame), 1) + frame
    return out


def fragments(ip, size):
    header, data = ip[:20], ip[20:]
    out = []
    for offset in range(0, len(data), size):
        chunk = data[offset:offset + size]
        more = offset + size < len(data)
        h = bytearray(header)
        h[2:4] = struct.pack("!H", 20 + len(chunk))
        h[6:8] = struct.pack("!H", offset // 8 | (0x2000 if more else 0))
        h[10:12] = b"\0\0"
        h[10:12] = struct.pack("!H", checksum(bytes(h)))
        out.append(bytes(h) + chunk)
    return out


def analysis_seeds():
    ip = UDP4
    seeds = {
        "ethernet-udp": (1, [eth(0x0800, UDP4), eth(0x0800, ipv4(B, A, 17, udp(53, 1234, b"answer", B, A)))]),
        "ethernet-tcp-handshake": (1, [eth(0x0800, TCP4), eth(0x0800, ipv4(B, A, 6, tcp(80, 40000, 0x12, B, A, 5000, 2))),
                                       eth(0x0800, ipv4(A, B, 6, tcp(40000, 80, 0x10, A, B, 2, 5001))),
                                       eth(0x0800, ipv4(A, B, 6, tcp(40000, 80, 0x11, A, B, 2, 5001)))]),
        "ethernet-icmp": (1, [eth(0x0800, ICMP4)]),
        "ethernet-ipv6": (1, [eth(0x86DD, UDP6)]),
        "vlan-qinq": (1, [eth(0x88A8, struct.pack("!HH", 1, 0x8100) + struct.pack("!HH", 2, 0x0800) + ip)]),
        "mpls": (1, [eth(0x8847, struct.pack("!I", 100 << 12 | 0x100 | 64) + ip)]),
        "pbb": (1, [eth(0x88E7, bytes(4) + eth(0x0800, ip))]),
        "vntag": (1, [eth(0x8926, bytes([0x80, 0, 0, 0]) + struct.pack("!H", 0x8100) + struct.pack("!HH", 1, 0x0800) + ip)]),
        "pppoe": (1, [eth(0x8864, bytes([0x11, 0, 0, 1]) + struct.pack("!HH", len(ip) + 2, 0x21) + ip)]),
        "snap-8023": (1, [MACS + struct.pack("!H", len(ip) + 8) + snap(0x0800, ip)]),
        "fabricpath": (1, [MACS + bytes([0x89, 0x03]) + bytes(2) + eth(0x0800, ip)]),
        "raw": (101, [ip, UDP6]),
        "sll": (113, [bytes([0, 0, 0, 1, 0, 6]) + MACS[:6] + bytes(2) + struct.pack("!H", 0x0800) + ip]),
        "sll2": (276, [struct.pack("!HHIHBB", 0x0800, 0, 2, 1, 0, 6) + MACS[:8] + ip]),
        "ieee80211": (105, [bytes([0x08, 0x02, 0, 0]) + bytes([0x11] * 18) + bytes(2) + snap(0x0800, ip)]),
        "radiotap": (127, [bytes([0, 0, 8, 0, 0, 0, 0, 0, 0x88, 0x02, 0, 0]) + bytes([0x11] * 18) + bytes(4) + snap(0x0800, ip)]),
        "nflog": (239, [bytes([2, 0, 0, 0]) + struct.pack("<HH", 10, 10) + b"trawl\0" + bytes(2)
                        + struct.pack("<HH", 4 + len(ip), 9) + ip]),
        "null": (0, [struct.pack("<I", 2) + ip]),
        "loop": (108, [struct.pack("!I", 24) + UDP6]),
        "ppp": (9, [bytes([0xFF, 0x03, 0, 0x21]) + ip]),
        "ppp-serial": (50, [bytes([0xFF, 0x03, 0, 0x57]) + UDP6]),
        "fddi": (10, [bytes([0x50]) + bytes([0x22] * 12) + snap(0x0800, ip)]),
        "fragments": (1, [eth(0x0800, f) for f in reversed(fragments(ipv4(A, B, 17, udp(9, 10, bytes(200), A, B)), 64))]),
        "ipv6-fragment": (101, [ipv6(v6(1), v6(2), 44, bytes([17, 0, 0, 0, 0, 0, 0, 9]) + udp(1, 2, b"x", v6(1), v6(2)))]),
        "ipv6-routing": (101, [ipv6(v6(1), v6(2), 43, bytes([17, 2, 0, 1, 0, 0, 0, 0]) + v6(9) + udp(1, 2, b"x", v6(1), v6(9)))]),
        "ip-in-ip": (1, [outer_ip(4, ip)]),
        "gre": (1, [outer_ip(47, struct.pack("!HH", 0, 0x0800) + ip)]),
        "gre-erspan2": (1, [outer_ip(47, struct.pack("!HHI", 0x1000, 0x88BE, 1) + bytes(8) + eth(0x0800, ip))]),
        "gre-pptp": (1, [outer_ip(47, struct.pack("!HHHH", 0x2001, 0x880B, len(ip) + 4, 1) + bytes([0xFF, 3, 0, 0x21]) + ip)]),
        "vxlan": (1, [outer_udp(50000, 4789, bytes([8, 0, 0, 0, 0, 0, 7, 0]) + eth(0x0800, ip))]),
        "geneve": (1, [outer_udp(50000, 6081, bytes([0, 0]) + struct.pack("!H", 0x0800) + bytes([0, 0, 7, 0]) + ip)]),
        "gtp": (1, [outer_udp(2152, 2152, bytes([0x30, 0xFF]) + struct.pack("!HI", len(ip), 1) + ip)]),
        "teredo": (1, [outer_udp(40000, 3544, bytes([0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]) + UDP6)]),
        "ayiya": (1, [outer_udp(40000, 5072, bytes([0x41, 0x52, 0x11, 4, 0, 0, 0, 0]) + bytes(36) + ip)]),
    }
    for name, (link_type, frames) in seeds.items():
        yield name, analysis_input(link_type, frames)
    # Tiny bounds (flags bit 3), so that eviction and expiry are reached: interleaved
    # datagrams past the table's 4 and its 4 KiB, time steps past the 2-second timeout.
    interleaved = []
    for ident in range(10):
        interleaved += fragments(ipv4(A, B, 17, udp(9, 10, bytes(1200), A, B), ident=ident), 400)[:2]
    yield "fragments-tiny-bounds", analysis_input(1, [eth(0x0800, f) for f in interleaved], flags=0b1011)
    slow = analysis_input(1, [], flags=0b1011)
    for f in fragments(ipv4(A, B, 17, udp(9, 10, bytes(300), A, B), ident=77), 96):
        slow += struct.pack("!HB", len(f) + 14, 24) + eth(0x0800, f)  # 3 s apart
    yield "fragments-expire", slow
    tunnels = [eth(0x0800, ipv4(v4("198.51.100.%d" % i), v4("198.51.100.200"), 4, UDP4)) for i in range(5)]
    yield "ip-tunnels-tiny-bounds", analysis_input(1, tunnels, flags=0b1011)
    # A TCP conversation with data in order, out of order, retransmitted and acknowledged
    # past a hole, closed by FINs and a RST, run with and without header prediction
    # (flags bit 4): the two must log the same.
    conversation = [eth(0x0800, TCP4), eth(0x0800, ipv4(B, A, 6, tcp(80, 40000, 0x12, B, A, 5000, 2)))]
    seq = 2
    for n, payload in enumerate([b"a" * 100, b"b" * 50, b"c" * 80]):
        conversation.append(eth(0x0800, ipv4(A, B, 6, tcp(40000, 80, 0x18, A, B, seq + (60 if n == 1 else 0), 5001, payload))))
        conversation.append(eth(0x0800, ipv4(B, A, 6, tcp(80, 40000, 0x10, B, A, 5001, seq + len(payload)))))
        seq += len(payload)
    conversation.append(eth(0x0800, ipv4(A, B, 6, tcp(40000, 80, 0x11, A, B, seq, 5001))))
    conversation.append(eth(0x0800, ipv4(B, A, 6, tcp(80, 40000, 0x04, B, A, 5001))))
    yield "tcp-header-prediction", analysis_input(1, conversation, flags=0b10010)
    # DNS over UDP outside bare mode: a response first, then an unknown opcode.
    dns = [eth(0x0800, ipv4(B, A, 17, udp(53, 53, struct.pack("!HHHHHH", 1, 0x8180, 1, 1, 0, 0) + b"x" * 20, B, A))),
           eth(0x0800, ipv4(A, B, 17, udp(53, 53, struct.pack("!HHHHHH", 2, 0x0800, 1, 0, 0, 0) + b"y" * 20, A, B)))]
    yield "dns", analysis_input(1, dns, flags=0b0001)
    # The same with tiny bounds and JSON logs, so that eviction and expiry are reached.
    yield "tiny-bounds", analysis_input(1, [eth(0x0800, ipv4(A, v4("10.1.0.%d" % i), 17, udp(1, 2, b"x", A, v4("10.1.0.%d" % i))))
                                            for i in range(20)], flags=0b1111)


def pcap(frames, big_endian=False, nano=False, snaplen=65535):
    e = ">" if big_endian else "<"
    out = struct.pack(e + "IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1)
    for i, frame in enumerate(frames):
        out += struct.pack(e + "IIII", 1_700_000_000 + i, 500, len(frame), len(frame)) + frame
    return out


def block(kind, body):
    body += bytes((4 - len(body) % 4) % 4)
    return struct.pack("<II", kind, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def pcapng(frames):
    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    resolution = struct.pack("<HH", 9, 1) + bytes([9, 0, 0, 0]) + struct.pack("<HH", 14, 8) + struct.pack("<q", 10) + bytes(4)
    out = shb + block(1, struct.pack("<HHI", 1, 0, 65535) + resolution) + block(1, struct.pack("<HHI", 1, 0, 1500))
    for i, frame in enumerate(frames):
        out += block(6, struct.pack("<IIIII", i % 2, 0, 1000 * i, len(frame), len(frame)) + frame)
    out += block(3, struct.pack("<I", len(frames[0])) + frames[0])
    out += block(5, bytes(8))  # statistics: skipped
    return out


def name16(text):
    data = text.encode()
    return struct.pack("<H", len(data)) + data


def batch(node, session, sequence, path, fields, records):
    """A log batch as docs/cluster-protocol.md lays it out; records are lists of value bytes."""
    out = b"TRLB" + bytes([1, 0, 0, 0]) + struct.pack("<QQ", session, sequence) + name16(node) + name16(path)
    out += struct.pack("<H", len(fields))
    for name, code in fields:
        out += name16(name) + bytes([code])
    out += struct.pack("<I", len(records))
    for record in records:
        out += b"".join(record)
    return out


def text32(text):
    data = text.encode()
    return struct.pack("<I", len(data)) + data


def cluster_seeds():
    every = [("ts", 5), ("h", 8), ("p", 9), ("s", 7), ("e", 10), ("c", 2), ("d", 6), ("b", 1), ("set", 11),
             ("i", 3), ("x", 4)]
    full = [b"\1" + struct.pack("<Q", 1700000000123456000), b"\1\4" + v4("10.1.2.3"), b"\1" + struct.pack("<H", 443),
            b"\1" + text32("tab\there"), b"\1" + text32("tcp"), b"\1" + struct.pack("<Q", 42),
            b"\1" + struct.pack("<Q", 1500000000), b"\1\1", b"\1" + struct.pack("<I", 2) + text32("a") + text32("b"),
            b"\1" + struct.pack("<q", -5), b"\1" + struct.pack("<d", 0.25)]
    unset = [b"\0"] * len(every)
    six = [b"\1" + struct.pack("<Q", 1), b"\1\x10" + v6(1)] + [b"\0"] * (len(every) - 2)
    return {
        "batch-every-type": b"B" + batch("worker-1", 0xFEED, 7, "test", every, [full, unset, six]),
        "batch-empty": b"B" + batch("w", 1, 1, "conn", [("ts", 5)], []),
        "ack": b"A" + b"TRLA" + bytes([1, 1, 0, 0]) + struct.pack("<QQ", 0xFEED, 7),
        "layout": b"L" + b'{"nodes": {"m": {"role": "manager", "host": "127.0.0.1"}, '
                         b'"l": {"role": "logger", "host": "127.0.0.1", "port": 27770}}, "batch_records": 10}',
    }


def main():
    frames = [eth(0x0800, UDP4), eth(0x0800, TCP4), eth(0x86DD, UDP6)]
    corpora = {
        "analysis": dict(analysis_seeds()),
        "trace-readers": {
            "pcap-le-micro": pcap(frames),
            "pcap-be-nano": pcap(frames, big_endian=True, nano=True),
            "pcap-huge-snaplen": pcap(frames, snaplen=0xFFFFFFFF),
            "pcapng-two-interfaces": pcapng(frames),
        },
        "cluster-messages": cluster_seeds(),
        "options": {
            "every-type": b"Fuzz::flag=T\nFuzz::count=24\nFuzz::offset=-3\nFuzz::ratio=0.25\nFuzz::name=eth0\nFuzz::mode=lb",
            "bad": b"Fuzz::count=-1\nFuzz::mode=nope\nNot::known=1\nplain-word",
        },
    }
    for target, seeds in corpora.items():
        directory = os.path.join(here, "corpus", target)
        os.makedirs(directory, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)
        print("%s: %d seeds" % (target, len(seeds)))


main()
