"""Runs the capture benchmark; see benchmarks/af-packet/run."""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

TRAWL, PACKETS = sys.argv[1], int(sys.argv[2])
TAG = str(os.getpid())
NS_CAPTURE, NS_SEND = "trawl-bench-a-" + TAG, "trawl-bench-b-" + TAG
IF_CAPTURE, IF_SEND = "tba" + TAG[-6:], "tbb" + TAG[-6:]
LOGDIR = tempfile.mkdtemp(prefix="trawl-bench-logs-")
for sub in ("1", "2"):
    os.makedirs(os.path.join(LOGDIR, sub), exist_ok=True)

# 60-byte UDP frames whose source port steps through 59 000 values: as many flows, so
# fanout hashing has something to spread.
TRAFGEN_CONFIG = """{
  eth(da=02:00:00:00:00:01, sa=02:00:00:00:00:02),
  ipv4(saddr=10.231.90.2, daddr=10.231.90.1, ttl=64),
  udp(sport=dinc(1024, 60000), dport=9),
  fill(0x41, 18)
}
"""


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def setup():
    sh("ip", "netns", "add", NS_CAPTURE)
    sh("ip", "netns", "add", NS_SEND)
    sh("ip", "link", "add", IF_CAPTURE, "netns", NS_CAPTURE, "type", "veth", "peer", "name", IF_SEND, "netns", NS_SEND)
    for ns, interface in ((NS_CAPTURE, IF_CAPTURE), (NS_SEND, IF_SEND)):
        # No IPv6 chatter (router solicitations, DAD): only the generator's packets count.
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        sh("ip", "-n", ns, "link", "set", interface, "up")


def teardown():
    for ns in (NS_CAPTURE, NS_SEND):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)



def rx_packets():
    return int(sh("ip", "netns", "exec", NS_CAPTURE, "cat", f"/sys/class/net/{IF_CAPTURE}/statistics/rx_packets").stdout)


def cpu_seconds(pid):
    """CPU time a process has used so far, user and system, in ns precision (schedstat)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def parse_trawl(text):
    packets = int(re.search(r"^packets: (\d+)", text, re.M).group(1))
    drop = re.search(r"^dropped: (\d+) by kernel", text, re.M)
    return packets, int(drop.group(1)) if drop else 0


def parse_tcpdump(text):
    return (int(re.search(r"(\d+) packets captured", text).group(1)),
            int(re.search(r"(\d+) packets dropped by kernel", text).group(1)))


def parse_netsniff(text):
    passed = int(re.search(r"(\d+)\s+packets passed filter", text).group(1))
    failed = int(re.search(r"(\d+)\s+packets failed filter", text).group(1))
    return passed, failed


def run_case(commands, parse, config_path):
    """Starts the capture processes, offers the load, stops them; returns the figures."""
    processes = [subprocess.Popen(["ip", "netns", "exec", NS_CAPTURE] + command,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for command in commands]
    time.sleep(1.5)  # every tool is capturing by then
    before = rx_packets()
    cpu_before = sum(cpu_seconds(p.pid) for p in processes)
    started = time.perf_counter()
    sh("ip", "netns", "exec", NS_SEND, "trafgen", "-o", IF_SEND, "-c", config_path, "-n", str(PACKETS), "-P", "1", "-q")
    elapsed = time.perf_counter() - started
    time.sleep(1.0)  # let the captures drain their buffers
    offered = rx_packets() - before
    # CPU spent on the load itself: setting up a 128 MiB ring costs 0.05-0.3 s of system
    # time that has nothing to do with the packets, and would swamp a 2 M packet run.
    cpu_load = sum(cpu_seconds(p.pid) for p in processes) - cpu_before
    for process in processes:
        process.send_signal(signal.SIGINT)
    captured = dropped = 0
    cpu_total = 0.0
    for process in processes:
        _, _, usage = os.wait4(process.pid, 0)
        process.returncode = 0
        cpu_total += usage.ru_utime + usage.ru_stime
        c, d = parse(process.stdout.read())
        captured += c
        dropped += d
    return offered, captured, dropped, cpu_load, cpu_total, offered / elapsed


def main():
    cases = [
        ("tcpdump (libpcap)", 1, lambda: [["tcpdump", "-i", IF_CAPTURE, "-n", "-w", "/dev/null", "-B", "131072"]], parse_tcpdump),
        ("netsniff-ng", 1, lambda: [["netsniff-ng", "--in", IF_CAPTURE, "--out", "/dev/null", "--silent", "-S", "128MiB"]], parse_netsniff),
        ("trawl af_packet", 1, lambda: [[TRAWL, "-i", "af_packet::" + IF_CAPTURE, "--no-progress", "--no-analysis"]], parse_trawl),
        ("trawl af_packet nofanout", 1, lambda: [[TRAWL, "-i", "af_packet::" + IF_CAPTURE, "--no-progress", "--no-analysis", "AF_Packet::enable_fanout=F"]], parse_trawl),
        ("trawl af_packet fanout", 2, lambda: [[TRAWL, "-i", "af_packet::" + IF_CAPTURE, "--no-progress", "--no-analysis", "AF_Packet::fanout_id=42"]] * 2, parse_trawl),
        ("trawl libpcap", 1, lambda: [[TRAWL, "-i", IF_CAPTURE, "--no-progress", "--no-analysis"]], parse_trawl),
        # With the connection analysis behind the source, writing conn.log.
        ("trawl af_packet+conn.log", 1, lambda: [[TRAWL, "-i", "af_packet::" + IF_CAPTURE, "--no-progress", "--logdir", LOGDIR]], parse_trawl),
        ("trawl af_packet+conn.log", 2, lambda: [[TRAWL, "-i", "af_packet::" + IF_CAPTURE, "--no-progress", "--logdir", LOGDIR + f"/{i}",
                                                   "AF_Packet::fanout_id=43"] for i in (1, 2)], parse_trawl),
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".trafgen") as config:
        config.write(TRAFGEN_CONFIG)
        config.flush()
        setup()
        try:
            rows = [(name, members) + run_case(make(), parse, config.name) for name, members, make, parse in cases]
        finally:
            teardown()
    print(f"load: trafgen, {PACKETS} UDP frames of 60 bytes over ~59000 flows, on a veth pair, one run per tool")
    print("CPU: user+sys of the capture processes while the load ran, per million packets captured;")
    print("     'whole run' adds start-up (ring allocation) and shutdown. The kernel's delivery work")
    print("     (softirq) runs on the generator's CPU on veth and shows as a lower offered rate.")
    print(f"{'capture':24} {'members':>7} {'offered':>9} {'kpps':>5} {'captured':>9} {'dropped':>8} {'CPU s/Mpkt':>10} {'whole run s':>11}")
    for name, members, offered, captured, dropped, cpu, total, rate in rows:
        per_million = cpu / (captured / 1e6) if captured else float("nan")
        print(f"{name:24} {members:7} {offered:9} {rate / 1e3:5.0f} {captured:9} {dropped:8} {per_million:10.3f} {total:11.2f}")
    base = next(r for r in rows if r[0].startswith("tcpdump"))
    base_cpu = base[5] / (base[3] / 1e6)
    for name, members, offered, captured, dropped, cpu, total, rate in rows[2:5]:
        print(f"ratio {name} ({members}) CPU per packet / tcpdump: {cpu / (captured / 1e6) / base_cpu:.2f}  (goal <= 1.0, with 0 drops)")
    for name, members, offered, captured, dropped, cpu, total, rate in rows[6:]:
        print(f"{name} ({members}): {dropped} dropped of {offered} offered (goal: 0 with the analysis running)")


if __name__ == "__main__":
    try:
        main()
    finally:
        import shutil
        shutil.rmtree(LOGDIR, ignore_errors=True)
