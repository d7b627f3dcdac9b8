#!/usr/bin/env python3
"""The cluster benchmark (benchmarks/cluster/run builds the programs and calls this).

1. throughput: N conn records from each of 2 workers into one logger, against the same
   records written by one process to a local file (cluster/local, records per second);
2. logger kill: the same with the logger SIGKILLed mid-run and restarted (lost, duplicated);
3. stall: a worker under a steady load while the logger is stopped (SIGSTOP) for a while:
   the worker's and the logger's memory, the spool's size;
4. end to end: trawl -r on a trace of many connections against a 2-worker cluster reading
   it as two shards (wall time, total CPU, rows equal).
Ends with the one-line summary docs/benchmarks.md describes.
"""
import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

root, bench, trawl, mkpcap = sys.argv[1:5]
records = int(sys.argv[5])
stall_seconds = float(sys.argv[6])
e2e_flows = int(sys.argv[7])
work = tempfile.mkdtemp(prefix="trawl-cluster-bench-")
base_port = 29100
children = []  # every process started, killed if the benchmark stops early


def spawn(arguments, **options):
    process = subprocess.Popen(arguments, **options)
    children.append(process)
    return process


def layout(directory, port, workers=2, extra=""):
    nodes = ['"manager": {"role": "manager", "host": "127.0.0.1", "port": %d}' % port,
             '"logger-1": {"role": "logger", "host": "127.0.0.1", "port": %d}' % (port + 2)]
    nodes += ['"worker-%d": {"role": "worker", "host": "127.0.0.1"}' % i for i in range(1, workers + 1)]
    text = '{"nodes": {%s}, "rotation_interval": 0%s}' % (", ".join(nodes), extra)
    with open(os.path.join(directory, "layout.json"), "w") as f:
        f.write(text)


def start_logger(directory):
    process = spawn([trawl, "--cluster-layout", "layout.json", "--node", "logger-1", "--logdir", "logs"],
                    cwd=directory, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Its first line on stderr says it listens (or why it cannot).
    line = process.stderr.readline()
    if "taking logs on" not in line:
        raise SystemExit("the logger did not start: " + line + process.stderr.read())
    return process


def stop(process):
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    return out


def rows(path):
    """conn.log rows without their uid column."""
    result = []
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            result.append((fields[1], "\t".join(fields[:1] + fields[2:])))
    return result


def count_loss(path, expected_uids):
    seen = [uid for uid, _ in rows(path)]
    distinct = set(seen)
    return len(expected_uids - distinct), len(seen) - len(distinct)


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def directory_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, name))
            except OSError:
                pass
    return total


def throughput(runs=3):
    """The best of `runs` of each, interleaved (this machine's timings vary by 30 %)."""
    local_seconds = cluster_seconds = float("inf")
    same, lost, duplicated = True, 0, 0
    for run in range(runs):
        local = os.path.join(work, "local-%d" % run)
        os.makedirs(local)
        start = time.monotonic()
        subprocess.run([bench, "local", str(records), local, "1", "2"], check=True, stdout=subprocess.DEVNULL)
        local_seconds = min(local_seconds, time.monotonic() - start)
        d = os.path.join(work, "throughput-%d" % run)
        os.makedirs(d)
        layout(d, base_port + 40 + 3 * run)
        logger = start_logger(d)
        start = time.monotonic()
        workers = [spawn([bench, "worker", "layout.json", "worker-%d" % i, str(records)], cwd=d,
                         stdout=subprocess.PIPE, text=True) for i in (1, 2)]
        outputs = [w.communicate()[0] for w in workers]
        cluster_seconds = min(cluster_seconds, time.monotonic() - start)
        stop(logger)
        # Every run's rows against the local file's.
        got = rows(os.path.join(d, "logs", "conn.log"))
        want = rows(os.path.join(local, "conn.log"))
        same = sorted(r for _, r in got) == sorted(r for _, r in want) and same
        run_lost, run_duplicated = count_loss(os.path.join(d, "logs", "conn.log"), set(u for u, _ in want))
        lost += run_lost
        duplicated += run_duplicated
    total = 2 * records
    print("throughput (best of %d): %d records; local file %.3f s (%.0f records/s); cluster of 2 workers and a logger %.3f s (%.0f records/s)"
          % (runs, total, local_seconds, total / local_seconds, cluster_seconds, total / cluster_seconds))
    for line in outputs:
        print("  " + line.strip())
    print("  rows equal to the local file's in every run: %s; lost %d, duplicated %d" % ("yes" if same else "NO", lost, duplicated))
    print("ratio cluster/local records per second: %.2f  (goal >= 0.7, and >= 1 M records/s)" % (local_seconds / cluster_seconds))
    return total, total / cluster_seconds, lost, duplicated, local_seconds / cluster_seconds, want


def logger_kill(want):
    d = os.path.join(work, "kill")
    os.makedirs(d)
    layout(d, base_port + 10, extra=', "batch_records": 500')
    logger = start_logger(d)
    workers = [spawn([bench, "worker", "layout.json", "worker-%d" % i, str(records), str(records / 2.0)], cwd=d,
                                stdout=subprocess.PIPE, text=True) for i in (1, 2)]
    time.sleep(0.7)
    logger.kill()
    logger.wait()
    time.sleep(1.0)
    logger = start_logger(d)
    outputs = [w.communicate()[0] for w in workers]
    stop(logger)
    lost, duplicated = count_loss(os.path.join(d, "logs", "conn.log"), set(u for u, _ in want))
    print("logger kill: SIGKILL 0.7 s into a 2 s run, restarted 1 s later: lost %d, duplicated %d" % (lost, duplicated))
    for line in outputs:
        print("  " + line.strip())
    return lost, duplicated


def stall():
    d = os.path.join(work, "stall")
    os.makedirs(d)
    layout(d, base_port + 20, workers=1)
    logger = start_logger(d)
    rate = 100000
    seconds = stall_seconds + 10
    worker = spawn([bench, "worker", "layout.json", "worker-1", str(int(rate * seconds)), str(rate)], cwd=d,
                              stdout=subprocess.PIPE, text=True)
    time.sleep(3)
    base_worker, base_logger = rss_kib(worker.pid), rss_kib(logger.pid)
    logger.send_signal(signal.SIGSTOP)
    peak_worker = peak_logger = peak_spool = 0
    end = time.monotonic() + stall_seconds
    while time.monotonic() < end:
        peak_worker = max(peak_worker, rss_kib(worker.pid))
        peak_logger = max(peak_logger, rss_kib(logger.pid))
        peak_spool = max(peak_spool, directory_bytes(os.path.join(d, "spool")))
        time.sleep(0.5)
    logger.send_signal(signal.SIGCONT)
    out = worker.communicate()[0]
    peak_logger = max(peak_logger, rss_kib(logger.pid))
    stop(logger)
    got = len(rows(os.path.join(d, "logs", "conn.log")))
    print("stall: logger stopped %.0f s under %d records/s: worker memory %d KiB before, %d KiB at most while stopped "
          "(memory bound 64 MiB of batches); spool up to %.1f MB; logger %d KiB before, %d KiB at most; %d of %d records arrived"
          % (stall_seconds, rate, base_worker, peak_worker, peak_spool / 1e6, base_logger, peak_logger, got, int(rate * seconds)))
    print("  " + out.strip())


def end_to_end():
    d = os.path.join(work, "e2e")
    os.makedirs(os.path.join(d, "single"))
    trace = os.path.join(d, "trace.pcap")
    subprocess.run([mkpcap, "--flows", str(e2e_flows), "--udp-share", "0.5", "--max-payload", "64", "--concurrency", "256", trace],
                   check=True, stdout=subprocess.DEVNULL)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    subprocess.run([trawl, "-r", trace, "--logdir", "single"], cwd=d, check=True, stdout=subprocess.DEVNULL)
    single_wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    single_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    layout(d, base_port + 30)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    logger = start_logger(d)
    manager = spawn([trawl, "--cluster-layout", "layout.json", "--node", "manager"], cwd=d,
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    manager.stderr.readline()  # "forwarding events on ..."
    workers = [spawn([trawl, "--cluster-layout", "layout.json", "--node", "worker-%d" % i, "-r", trace,
                                 "Cluster::shard=%d/2" % (i - 1)], cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for i in (1, 2)]
    for w in workers:
        w.wait()
    workers_done = time.monotonic() - start
    manager.send_signal(signal.SIGTERM)
    manager.wait()
    stop(logger)
    cluster_wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cluster_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    single = sorted(r for _, r in rows(os.path.join(d, "single", "conn.log")))
    merged = sorted(r for _, r in rows(os.path.join(d, "logs", "conn.log")))
    print("end to end: %d connections; trawl -r %.2f s wall, %.2f s CPU; cluster (2 workers, logger, manager): merged logs "
          "complete after %.2f s (the last worker exits once all its batches are acknowledged), %.2f s with the nodes' "
          "start and stop, %.2f s CPU in all; rows equal: %s (%d)"
          % (len(single), single_wall, single_cpu, workers_done, cluster_wall, cluster_cpu,
             "yes" if single == merged else "NO (%d merged)" % len(merged), len(single)))
    print("ratio cluster/single: wall %.2f (logs complete), %.2f (with start and stop); CPU %.2f"
          % (workers_done / single_wall, cluster_wall / single_wall, cluster_cpu / single_cpu))


try:
    total, rate, lost, duplicated, ratio, want = throughput()
    kill_lost, kill_duplicated = logger_kill(want)
    if stall_seconds > 0:
        stall()
    if e2e_flows > 0:
        end_to_end()
    print("cluster: records=%d records_per_s=%.0f lost=%d duplicated=%d logger_kill_lost=%d logger_kill_duplicated=%d "
          "cluster_over_local=%.2f" % (total, rate, lost, duplicated, kill_lost, kill_duplicated, ratio))
finally:
    for child in children:
        if child.poll() is None:
            child.kill()
    shutil.rmtree(work, ignore_errors=True)
