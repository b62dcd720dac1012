#!/usr/bin/env python3
"""The base images the Dockerfiles name: present, pulled, or built here as local stand-ins.

    python3 scripts/base_images.py              # each FROM image: present, else pull, else a stand-in
    python3 scripts/base_images.py --offline    # no pull: a stand-in for every missing one
    python3 scripts/base_images.py --list [DOCKERFILE...]   # the names, one a line
    python3 scripts/base_images.py --offline --rebuild   # replace existing stand-ins

The names come from the FROM lines of Node/Dockerfile and Controller/Dockerfile (the one source
of truth). On a machine without a registry, a missing image is built under the same name from
what the machine has:

* `python:X.Y-...`: a Debian root filesystem (`mmdebstrap`, from the machine's own apt sources)
  with python3, `python` (python-is-python3) and sh; Debian's python3 must be X.Y.
* `rust:V-...`: a Debian root filesystem with gcc, plus this machine's Rust toolchain V (rustup's
  toolchain directory without its docs, with the x86_64-unknown-linux-musl target added), laid out
  like the official image: RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo, the tools
  in /usr/local/cargo/bin on PATH.

A stand-in says what it is in its comment (`docker image inspect -f '{{.Comment}}' NAME`).
This script never replaces an image that is not a stand-in, never pulls with --offline, and
names no registry or mirror: apt and rustup use the machine's own configuration.
"""
import argparse
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCKERFILES = ("Node/Dockerfile", "Controller/Dockerfile")
MUSL = "x86_64-unknown-linux-musl"
STAND_IN = "stand-in"  # first word of a stand-in's comment
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEBIAN_SUITES = ("bullseye", "bookworm", "trixie", "forky")


class Failure(Exception):
    pass


# ---- names -----------------------------------------------------------------------------------
def from_images(text):
    """External images named by a Dockerfile's FROM lines, in order (no scratch, no stage names)."""
    stages, out = set(), []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 2 or words[0].upper() != "FROM":
            continue
        words = [w for w in words[1:] if not w.startswith("--")]
        image = words[0]
        if len(words) >= 3 and words[1].upper() == "AS":
            stages.add(words[2].lower())
        if image != "scratch" and image.lower() not in stages and image not in out:
            out.append(image)
    return out


def base_images(root=ROOT, files=DOCKERFILES):
    out = []
    for rel in files:
        for image in from_images((root / rel).read_text(encoding="utf-8")):
            if image not in out:
                out.append(image)
    return out


def split_name(image):
    """("python", "3.11-slim-bookworm") from "python:3.11-slim-bookworm"."""
    repo, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "latest")
    return repo.split("/")[-1], tag


def suite_of(tag):
    """The Debian suite a tag names (`...-bookworm`), else this machine's own."""
    for suite in DEBIAN_SUITES:
        if suite in tag.split("-"):
            return suite
    try:
        text = pathlib.Path("/etc/os-release").read_text(encoding="utf-8")
    except OSError:
        text = ""
    m = re.search(r"^VERSION_CODENAME=(\w+)", text, re.M)
    return m.group(1) if m else "bookworm"


# ---- docker ----------------------------------------------------------------------------------
def sh(*cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def present(image):
    return sh("docker", "image", "inspect", image).returncode == 0


def comment(image):
    return sh("docker", "image", "inspect", "-f", "{{.Comment}}", image).stdout.strip()


def pull(image):
    try:
        return sh("docker", "pull", "-q", image, timeout=600).returncode == 0
    except subprocess.TimeoutExpired:
        return False


# ---- stand-ins -------------------------------------------------------------------------------
def need_mmdebstrap():
    if shutil.which("mmdebstrap"):
        return
    if os.geteuid() != 0:
        raise Failure("mmdebstrap is missing: apt-get install mmdebstrap (as root)")
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "mmdebstrap"]):
        p = sh(*cmd, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if p.returncode != 0:
            raise Failure(f"{' '.join(cmd)} failed: {(p.stderr or p.stdout).strip()[-400:]}")


def python_recipe(tag):
    m = re.match(r"(\d+)\.(\d+)", tag)
    if not m:
        raise Failure(f"python:{tag}: no X.Y version in the tag")
    want = f"{m.group(1)}.{m.group(2)}"
    check = (f"chroot \"$1\" python3 -c 'import sys; v=\"%d.%d\" % sys.version_info[:2]; "
             f"sys.exit(0 if v == \"{want}\" else \"Debian python3 is \" + v + \", not {want}\")'")
    return {
        "what": f"Debian {suite_of(tag)} with python3 {want}",
        "include": ["python3", "python-is-python3"],
        "hooks": [check],
        "changes": [f"ENV PATH={PATH}", "ENV LANG=C.UTF-8", f"ENV PYTHON_VERSION={want}",
                    'CMD ["python3"]'],
    }


def rust_sysroot(version):
    """This machine's toolchain `version` with the musl target, installing either if missing."""
    if not shutil.which("rustup"):
        raise Failure("rustup is missing: it provides the toolchain the Rust stand-in carries")
    steps = [["rustup", "toolchain", "install", version, "--profile", "minimal"],
             ["rustup", "target", "add", "--toolchain", version, MUSL]]
    p = sh("rustc", f"+{version}", "--print", "sysroot")
    if p.returncode != 0:
        run_step(steps[0])
        p = sh("rustc", f"+{version}", "--print", "sysroot")
    sysroot = pathlib.Path(p.stdout.strip()).resolve()
    if not (sysroot / "lib" / "rustlib" / MUSL).is_dir():
        run_step(steps[1])
    v = sh(str(sysroot / "bin" / "rustc"), "--version").stdout.split()
    if len(v) < 2 or v[1] != version:
        raise Failure(f"toolchain {sysroot} is rustc {' '.join(v[1:2]) or '?'}, not {version}")
    return sysroot


def run_step(cmd):
    p = sh(*cmd)
    if p.returncode != 0:
        raise Failure(f"{' '.join(cmd)} failed: {(p.stderr or p.stdout).strip()[-400:]}")


def rust_recipe(tag):
    m = re.match(r"\d+\.\d+\.\d+", tag)
    if not m:
        raise Failure(f"rust:{tag}: no X.Y.Z version in the tag")
    version = m.group(0)
    sysroot = rust_sysroot(version)
    dest = f"/usr/local/rustup/toolchains/{version}-x86_64-unknown-linux-gnu"
    q = shlex.quote
    hooks = [
        f'mkdir -p "$1{dest}" "$1/usr/local/cargo/bin"',
        f'tar -C {q(str(sysroot))} --exclude=./share/doc -cf - . | tar -C "$1{dest}" -xf -',
        f'for b in "$1{dest}"/bin/*; do ln -s "{dest}/bin/${{b##*/}}" "$1/usr/local/cargo/bin/"; done',
        f'chroot "$1" /usr/local/cargo/bin/rustc --print target-list | grep -qx {MUSL}',
    ]
    return {
        "what": f"Debian {suite_of(tag)} with gcc and this machine's Rust {version} ({MUSL} added)",
        "include": ["gcc", "libc6-dev"],
        "hooks": hooks,
        "changes": ["ENV RUSTUP_HOME=/usr/local/rustup", "ENV CARGO_HOME=/usr/local/cargo",
                    f"ENV PATH=/usr/local/cargo/bin:{PATH}", f"ENV RUST_VERSION={version}",
                    'CMD ["sh"]'],
    }


RECIPES = {"python": python_recipe, "rust": rust_recipe}


def debstrap_cmd(recipe, suite):
    """mmdebstrap writing the root filesystem as a tar stream to stdout (no docs, man, locales)."""
    cmd = ["mmdebstrap", "--quiet", "--variant=minbase", "--include=" + ",".join(recipe["include"]),
           "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
           "--dpkgopt=path-exclude=/usr/share/locale/*",
           "--dpkgopt=path-include=/usr/share/doc/*/copyright"]
    return cmd + [f"--customize-hook={h}" for h in recipe["hooks"]] + [suite, "-"]


def import_cmd(recipe, image):
    note = f"{STAND_IN} for {image}, built on this machine by scripts/base_images.py: {recipe['what']}"
    cmd = ["docker", "import", "--message", note]
    for change in recipe["changes"]:
        cmd += ["--change", change]
    return cmd + ["-", image]


def stream(producer, consumer):
    """producer | consumer; returns (ok, the producer's stderr, the consumer's). The producer's
    stderr goes to a file: a pipe could fill up and stall the tar stream."""
    with tempfile.TemporaryFile() as log:
        src = subprocess.Popen(producer, stdout=subprocess.PIPE, stderr=log)
        dst = subprocess.run(consumer, stdin=src.stdout, capture_output=True, text=True)
        src.stdout.close()
        ok = src.wait() == 0 and dst.returncode == 0
        log.seek(0)
        return ok, log.read().decode(errors="replace"), dst


def build_stand_in(image, why="not in the local image store and not pullable"):
    repo, tag = split_name(image)
    if repo not in RECIPES:
        raise Failure(f"{image}: not present, not pullable, and no stand-in recipe for {repo!r}")
    recipe = RECIPES[repo](tag)
    print(f"{image}: {why}: building a local stand-in "
          f"({recipe['what']}) ...", end="", flush=True)
    t0 = time.monotonic()
    need_mmdebstrap()
    ok, err, imported = stream(debstrap_cmd(recipe, suite_of(tag)), import_cmd(recipe, image))
    if not ok:
        print(" failed")
        if imported.returncode == 0:  # a partial root filesystem: never leave it under the name
            sh("docker", "image", "rm", image)
        raise Failure(f"{image}: stand-in build failed: {(err or imported.stderr).strip()[-800:]}")
    size = int(sh("docker", "image", "inspect", "-f", "{{.Size}}", image).stdout.strip() or 0)
    print(f" done in {time.monotonic() - t0:.0f} s ({size / 1e6:.0f} MB)", flush=True)


def ensure(image, offline, rebuild):
    if present(image):
        if rebuild and comment(image).startswith(STAND_IN):
            build_stand_in(image, "a stand-in, rebuilt on request")
        return
    if offline:
        build_stand_in(image, "not in the local image store (offline: no pull)")
    elif not pull(image):
        build_stand_in(image)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--offline", action="store_true", help="do not try to pull; build stand-ins")
    p.add_argument("--rebuild", action="store_true", help="rebuild existing stand-ins too")
    p.add_argument("--list", action="store_true", help="print the base images and stop")
    p.add_argument("dockerfiles", nargs="*", help=f"with --list (default: {', '.join(DOCKERFILES)})")
    a = p.parse_args()
    if a.dockerfiles and not a.list:
        p.error("Dockerfiles are named with --list only")
    images = base_images(ROOT, a.dockerfiles or DOCKERFILES)
    if a.list:
        print("\n".join(images))
        return 0
    try:
        for image in images:
            ensure(image, a.offline, a.rebuild)
    except Failure as e:
        print(f"base images: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
