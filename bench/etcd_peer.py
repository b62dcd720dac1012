"""etcd 3.4 (Debian's `etcd-server`) as a peer to measure beside this project: five members on
loopback, asked over etcd's HTTP status API. Nothing of etcd's code is used; only its binary.

Heartbeat 30 ms and election timeout 150 ms: etcd refuses an election timeout under five
heartbeat intervals, so 150 ms (this project's lowest timeout) cannot be paired with this
project's 50 ms heartbeat; 30/150 keeps the election timeout equal and the ratio legal.
PreVote on, as in this project's default.
"""
import http.client
import json
import os
import signal
import subprocess
import time

import machine

HEARTBEAT_MS = 30
ELECTION_MS = 150
CLIENT_PORT, PEER_PORT = 2379, 2380


def binary():
    """(path, note) of the etcd binary, installing Debian's `etcd-server` when missing."""
    return machine.ensure_tool("etcd", "etcd-server")


def version(exe):
    p = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False, timeout=30)
    first = (p.stdout or p.stderr).splitlines()[:1]
    return first[0].replace("etcd Version:", "").strip() if first else "?"


class Etcd:
    """Members m1..m5 on NET.1..NET.5 (client port 2379, peer port 2380), each with its data
    directory and log in `folder` (a temporary directory its owner removes)."""

    heartbeat_ms = HEARTBEAT_MS
    label = "etcd"

    def __init__(self, exe, folder, net="127.0.79", n=5):
        self.exe, self.folder = exe, folder
        self.names = ["m%d" % k for k in range(1, n + 1)]
        self.host = {name: "%s.%d" % (net, k) for k, name in enumerate(self.names, 1)}
        self.cluster = ",".join("%s=http://%s:%d" % (n_, h, PEER_PORT) for n_, h in self.host.items())
        self.procs, self.conns, self.ids = {}, {}, {}

    def spawn(self, name):
        host = self.host[name]
        args = [self.exe, "--name", name, "--data-dir", os.path.join(self.folder, name),
                "--listen-peer-urls", "http://%s:%d" % (host, PEER_PORT),
                "--initial-advertise-peer-urls", "http://%s:%d" % (host, PEER_PORT),
                "--listen-client-urls", "http://%s:%d" % (host, CLIENT_PORT),
                "--advertise-client-urls", "http://%s:%d" % (host, CLIENT_PORT),
                "--initial-cluster", self.cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", "raft-bench", "--heartbeat-interval", str(HEARTBEAT_MS),
                "--election-timeout", str(ELECTION_MS), "--pre-vote", "--logger", "zap",
                "--log-outputs", "stderr"]
        with open(os.path.join(self.folder, name + ".log"), "ab") as log:
            self.procs[name] = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        return self.procs[name]

    def start(self):
        for name in self.names:
            self.spawn(name)
        return self

    def pid(self, name):
        return self.procs[name].pid

    def proc(self, name):
        return self.procs[name]

    def restart(self, name):
        """A stopped member again, on its data directory (the cluster flags are then ignored)."""
        self.spawn(name)

    def status(self, name):
        """(leader's member id, term) from POST /v3/maintenance/status, or None (no answer)."""
        conn = self.conns.get(name)
        if conn is None:
            conn = self.conns[name] = http.client.HTTPConnection(self.host[name], CLIENT_PORT, timeout=0.5)
        try:
            conn.request("POST", "/v3/maintenance/status", body="{}",
                         headers={"Content-Type": "application/json"})
            reply = json.loads(conn.getresponse().read())
        except (OSError, http.client.HTTPException, ValueError):
            conn.close()
            del self.conns[name]
            return None
        member = reply.get("header", {}).get("member_id")
        if member:
            self.ids[member] = name
        return reply.get("leader"), int(reply.get("raftTerm") or 0)

    def views(self, names):
        """{name: (leader name or None, term) or None} of `names`, asked one after another."""
        raw = {n: self.status(n) for n in names}
        return {n: None if v is None else (self.ids.get(v[0]), v[1]) for n, v in raw.items()}

    def stop(self):
        """SIGTERM every member still running (by pid), SIGKILL whatever is left after 5 s."""
        for c in self.conns.values():
            c.close()
        self.conns = {}
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = {}
