#!/usr/bin/env python3
"""The cluster as a Docker Swarm stack: deploy, wait for a leader, remove (standard library only).

    python3 scripts/swarm.py up   [--stack raft] [--file docker-stack.yml] [--nodes 5]
    python3 scripts/swarm.py down [--stack raft]

`up` needs an active swarm; on a machine that has none it creates a single-node one bound to
loopback (`docker swarm init --advertise-addr 127.0.0.1`) and says so. It then gives every
service NodeK a host: the first host labelled `raft.NodeK=true`, or, when no host has that label
yet, the swarm's ready hosts in turn (by host name). Labels are never moved once set: a node's
term and vote live in a volume on its host. Then `docker stack deploy --resolve-image never`
(there is no registry: every host must already have the image) and a wait for one agreed leader.
`down` removes the stack, its network and its volumes; it leaves the swarm and the labels alone.

This file owns the Docker commands for a stack; it never changes a swarm it did not create
except for adding missing raft.NodeK labels.
"""
import argparse
import json
import subprocess
import sys
import time

IMAGE = "raft-node:latest"
GWBRIDGE = "docker_gwbridge"  # created by `docker swarm init`, left behind by `leave`


class Failure(AssertionError):
    pass


def docker(*args, check=True, timeout=120):
    p = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise Failure(f"docker {' '.join(args)} -> exit {p.returncode}: {(p.stderr or p.stdout).strip()}")
    return p


# ---- the swarm itself ----------------------------------------------------------------------------
def state():
    """'active', 'inactive', 'pending', ... as the daemon reports it."""
    return docker("info", "-f", "{{.Swarm.LocalNodeState}}").stdout.strip()


def is_manager():
    return docker("info", "-f", "{{.Swarm.ControlAvailable}}").stdout.strip() == "true"


def init_single():
    """Create a single-node swarm on loopback. Returns what `leave_single` needs to undo it."""
    had_gw = docker("network", "inspect", GWBRIDGE, check=False).returncode == 0
    docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377")
    return {"had_gwbridge": had_gw}


def leave_single(token):
    """Leave the swarm `init_single` created, and remove the bridge it added."""
    docker("swarm", "leave", "--force", check=False, timeout=60)
    if not token.get("had_gwbridge"):
        for _ in range(20):  # the bridge keeps endpoints for a moment after leaving
            if docker("network", "rm", GWBRIDGE, check=False).returncode == 0:
                break
            if docker("network", "inspect", GWBRIDGE, check=False).returncode != 0:
                break
            time.sleep(0.5)


# ---- placement labels ----------------------------------------------------------------------------
def hosts():
    """[(id, hostname, labels)] of the ready, active hosts, by host name."""
    ids = docker("node", "ls", "-q").stdout.split()
    if not ids:
        return []
    out = []
    for n in json.loads(docker("node", "inspect", *ids).stdout):
        if n["Status"]["State"] == "ready" and n["Spec"].get("Availability") == "active":
            out.append((n["ID"], n["Description"]["Hostname"], n["Spec"].get("Labels") or {}))
    return sorted(out, key=lambda h: h[1])


def label(nodes):
    """Label a host for each NodeK that has none: hosts in turn. Returns [(host id, key)] added."""
    all_hosts = hosts()
    if not all_hosts:
        raise Failure("no ready swarm host to place the nodes on")
    taken = {k for _, _, labels in all_hosts for k in labels}
    added = []
    for k in range(1, nodes + 1):
        key = f"raft.Node{k}"
        if key in taken:
            continue
        host_id, host_name, _ = all_hosts[(k - 1) % len(all_hosts)]
        docker("node", "update", "--label-add", f"{key}=true", host_id)
        added.append((host_id, key))
        print(f"Node{k} pinned to {host_name} (label {key}=true)")
    return added


def unlabel(added):
    for host_id, key in added:
        docker("node", "update", "--label-rm", key, host_id, check=False)


# ---- the stack ------------------------------------------------------------------------------------
def network(stack):
    return f"{stack}_raft"


def deploy(stack, file):
    docker("stack", "deploy", "--resolve-image", "never", "-c", file, stack, timeout=180)


def services(stack):
    """{service name: 'running/desired'} of the stack's services."""
    p = docker("service", "ls", "--filter", f"label=com.docker.stack.namespace={stack}",
               "--format", "{{.Name}} {{.Replicas}}")
    return dict(line.split(" ", 1) for line in p.stdout.splitlines() if " " in line)


def wait_running(stack, nodes, timeout=60.0):
    """Until every service of the stack has its one task running; returns the seconds waited."""
    t0 = time.monotonic()
    while True:
        s = services(stack)
        if len(s) == nodes and all(r.split(" ")[0] == "1/1" for r in s.values()):
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise Failure(f"tasks not running within {timeout:.0f} s: {s}")
        time.sleep(0.2)


def containers(stack, all_states=False):
    p = docker("ps", *(["-a"] if all_states else []), "-q", "--filter",
               f"label=com.docker.stack.namespace={stack}")
    return p.stdout.split()


def remove(stack, timeout=60.0):
    """Stack, then (once its containers are gone) its network and volumes. Never raises."""
    try:
        docker("stack", "rm", stack, check=False, timeout=120)
        deadline = time.monotonic() + timeout
        while containers(stack, all_states=True) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = containers(stack, all_states=True)
        if left:
            docker("rm", "-f", *left, check=False)
        while docker("network", "inspect", network(stack), check=False).returncode == 0:
            if time.monotonic() > deadline:
                if docker("network", "rm", network(stack), check=False).returncode != 0:
                    users = docker("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}",
                                   network(stack), check=False).stdout.split()
                    print(f"network {network(stack)} stays: still used by {' '.join(users) or 'a container'}"
                          " (remove it, then `docker network rm`)", file=sys.stderr)
                break
            time.sleep(0.5)
        vols = docker("volume", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={stack}").stdout.split()
        if vols:
            docker("volume", "rm", *vols, check=False)
    except Exception as e:  # noqa: BLE001 - cleanup goes on
        print(f"cleanup of stack {stack} failed: {e}", file=sys.stderr)


def status(stack, nodes, image=IMAGE):
    """`raft status` from a throwaway container on the stack network: (agreed, table)."""
    p = docker("run", "--rm", "--network", network(stack), image, "status", "--cluster-size",
               str(nodes), "--timeout-ms", "300", check=False, timeout=60)
    return p.returncode == 0, p.stdout + p.stderr


# ---- command line ---------------------------------------------------------------------------------
def up(a):
    if state() != "active":
        print("no swarm here: creating a single-node one on loopback "
              "(`docker swarm leave --force` removes it)")
        init_single()
    if not is_manager():
        raise Failure("this host is not a swarm manager: run `make swarm-up` on a manager")
    label(a.nodes)
    deploy(a.stack, a.file)
    print(f"stack {a.stack}: tasks running after {wait_running(a.stack, a.nodes, 120):.1f} s")
    table = ""
    for _ in range(40):
        agreed, table = status(a.stack, a.nodes)
        if agreed:
            break
        time.sleep(0.5)
    print(table, end="")
    print(f"network {network(a.stack)} (attachable): "
          f"docker run --rm --network {network(a.stack)} {IMAGE} status")


def down(a):
    remove(a.stack)
    print(f"stack {a.stack} removed with its network and volumes; the swarm stays "
          "(`docker swarm leave --force` on a single-node swarm)")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["up", "down"])
    p.add_argument("--stack", default="raft", help="stack name (default raft)")
    p.add_argument("--file", default="docker-stack.yml", help="stack file (default docker-stack.yml)")
    p.add_argument("--nodes", type=int, default=5, help="cluster size (default 5)")
    a = p.parse_args()
    try:
        (up if a.command == "up" else down)(a)
    except Failure as e:
        print(f"swarm {a.command}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
