#!/usr/bin/env python3
"""Traffic for the live-capture tests: many short TCP and UDP conversations.

    flows.py serve PORT              TCP and UDP echo on PORT, until killed
    flows.py send HOST PORT TCP UDP  TCP connections (handshake, data both ways, close) and
                                     UDP exchanges, each from its own source port (TCP from
                                     30000 up, UDP from 20000 up), so each is a distinct flow
    flows.py vlan IFACE VID COUNT    COUNT 802.1Q-tagged UDP frames (VLAN VID, to port 7777)
                                     sent raw on IFACE; needs no VLAN support in the kernel

Standard library only, so that it runs wherever the tests run.
"""
import socket
import socketserver
import struct
import sys
import threading


class TCPEcho(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(4096)
            if not data:
                return
            self.request.sendall(data)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def serve(port):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", port))

    def echo_udp():
        while True:
            data, peer = udp.recvfrom(4096)
            udp.sendto(data, peer)

    threading.Thread(target=echo_udp, daemon=True).start()
    with Server(("0.0.0.0", port), TCPEcho) as server:
        print("serving", flush=True)
        server.serve_forever()


def send(host, port, tcp, udp):
    for i in range(tcp):
        with socket.create_connection((host, port), timeout=5, source_address=("", 30000 + i)) as s:
            payload = b"tcp %d " % i * 8
            s.sendall(payload)
            received = b""
            while len(received) < len(payload):
                received += s.recv(4096)
    for i in range(udp):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("", 20000 + i))
            s.settimeout(5)
            s.sendto(b"udp %d" % i, (host, port))
            s.recvfrom(4096)
    print("sent", tcp, udp, flush=True)


def vlan(interface, vid, count):
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((interface, 0))
        for i in range(count):
            payload = b"vlan %d" % i
            udp = struct.pack("!HHHH", 40000 + i, 7777, 8 + len(payload), 0) + payload
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0,
                             bytes([10, 231, vid, 2]), bytes([10, 231, vid, 1]))
            frame = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x02" + struct.pack("!HHH", 0x8100, vid, 0x0800) + ip + udp
            s.send(frame)
    print("sent", count, flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    elif sys.argv[1] == "vlan":
        vlan(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
