"""What the benchmark reads from the machine: its facts and load, per-process CPU, memory and
system calls, UDP counters, and the Debian packages it needs (installed with apt-get when
missing). Linux only."""
import os
import platform
import shutil
import signal
import subprocess
import tempfile
import time

import raftkit


def progress(msg):
    print(msg, flush=True)


def loadavg():
    """The 1-minute load average."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def machine():
    """Facts to print at the top of a report."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(next(line.split()[1] for line in f if line.startswith("MemTotal:")))
    return {"arch": platform.machine(), "cpu": cpu, "cores": os.cpu_count(), "mem_gib": mem_kib / 2**20,
            "kernel": platform.release(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M %Z"), "load": loadavg()}


def snmp_udp():
    """The `Udp:` counters of /proc/net/snmp (this network namespace)."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return dict(zip(rows[0][1:], map(int, rows[1][1:])))


def usage(pids, seconds):
    """{name: {cpu, VmRSS, VmHWM}} of processes {name: pid} over `seconds`: CPU is (utime+stime)
    from /proc/PID/stat in % of one core, memory from /proc/PID/status at the end (KiB)."""
    before, t = {n: raftkit.cpu_seconds(p) for n, p in pids.items()}, time.monotonic()
    time.sleep(seconds)
    after, dt = {n: raftkit.cpu_seconds(p) for n, p in pids.items()}, time.monotonic() - t
    return {n: dict(cpu=100.0 * (after[n] - before[n]) / dt, **raftkit.memory_kib(p))
            for n, p in pids.items()}


def ensure_tool(binary, package):
    """(path of `binary`, note): installs Debian's `package` with apt-get when it is missing and
    says so; (None, why) when it cannot be had."""
    path = shutil.which(binary)
    if path:
        return path, ""
    if not shutil.which("apt-get"):
        return None, "`%s` is missing and there is no apt-get to install `%s`" % (binary, package)
    progress("bench: `%s` is missing: apt-get install %s" % (binary, package))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, "`%s` failed: %s" % (" ".join(cmd), e)
        if p.returncode:
            return None, "`%s` failed: %s" % (" ".join(cmd), (p.stderr or p.stdout).strip()[-200:])
    path = shutil.which(binary)
    return (path, "installed with `apt-get install %s` by this run" % package) if path else \
        (None, "`apt-get install %s` did not provide `%s`" % (package, binary))


def parse_strace_summary(text):
    """{syscall: [calls, errors]} from `strace -c` output (its table; the total row left out)."""
    out = {}
    for line in text.splitlines():
        f = line.split()
        # % time, seconds, usecs/call, calls, [errors,] syscall
        if len(f) in (5, 6) and f[-1] != "total" and f[3].isdigit() and f[0][0].isdigit():
            out[f[-1]] = [int(f[3]), int(f[4]) if len(f) == 6 else 0]
    return out


def syscalls(pids, seconds, strace):
    """{name: {syscall: [calls, errors]}} of processes {name: pid} (all their threads) over
    `seconds`, counted by `strace -c -f -p PID`, one strace per process, all at once; strace
    is stopped with SIGINT by its pid, and writes its table on detaching."""
    with tempfile.TemporaryDirectory(prefix="raft-bench-strace-") as d:
        procs = {}
        try:
            for name, pid in pids.items():
                procs[name] = subprocess.Popen([strace, "-c", "-f", "-qq", "-o", os.path.join(d, name),
                                                "-p", str(pid)], stdout=subprocess.DEVNULL,
                                               stderr=subprocess.PIPE, text=True)
            time.sleep(seconds)
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
            errors = {}
            for name, p in procs.items():
                try:
                    _, err = p.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    _, err = p.communicate()
                errors[name] = (err or "").strip()
        out = {}
        for name in pids:
            try:
                with open(os.path.join(d, name)) as f:
                    out[name] = parse_strace_summary(f.read())
            except FileNotFoundError:
                out[name] = {}
            if not out[name]:
                raise RuntimeError("strace of %s counted nothing: %s" % (name, errors.get(name)[-200:]))
    return out
