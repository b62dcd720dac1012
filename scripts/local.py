#!/usr/bin/env python3
"""Start N `raft node` processes on loopback and watch them: the way to try it without Docker.

    PYTHONPATH=Controller python3 scripts/local.py [N] [--bin target/release/raft]     (make local NODES=N)

Node K listens on 127.0.0.(10+K):5555 and keeps its state and log in a fresh temporary folder.
Ctrl-C (or SIGTERM) stops every node this script started.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

import raftkit


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("nodes", nargs="?", type=int, default=5)
    ap.add_argument("--bin", default=os.path.join("target", "release", "raft"))
    args = ap.parse_args()
    if not 1 <= args.nodes <= 64:
        ap.error("N must be 1 to 64")
    exe = os.path.abspath(args.bin)
    folder = tempfile.mkdtemp(prefix="raft-local-")  # kept: the logs are worth reading afterwards
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with raftkit.LocalCluster(exe, args.nodes, folder=folder, inherit=True) as c:
        try:
            print("%d nodes on 127.0.0.11.. port 5555; logs and state in %s" % (args.nodes, folder))
            start = time.monotonic()
            while True:
                status = subprocess.run([exe, "status", "--timeout-ms", "200"], env=c.env,
                                        capture_output=True, text=True)
                if status.returncode == 0 or time.monotonic() - start > 10:
                    break
            print(status.stdout, end="")
            print("(after %d ms)\n" % ((time.monotonic() - start) * 1000))
            print("Drive it from another shell:\n  export PEERS=%s" % c.env["PEERS"])
            print("  %s status | leader-info Node1 | timeout Node2 | shutdown Node3" % args.bin)
            print("Watching (Ctrl-C stops the cluster):", flush=True)
            subprocess.run([exe, "watch"], env=c.env)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
