#!/usr/bin/env python3
"""Assembles the playground's one file: ``python3 playground/build.py WASM OUT [--rustc VERSION]``.

The page (``playground/page.html``) gets the wasm module gzip-compressed and base64-encoded in
place of ``/*WASM*/``, and the scenario files of ``tests/sim/testdata`` (their commands and
comments; the page regenerates the traces) in place of ``/*SCENARIOS*/``. The result needs
nothing but a browser: no server, nothing fetched.

``unpack(page)`` returns the parts back (the wasm bytes, the scenarios, the rest of the page), so
a test can compare two builds part by part. Standard library only.
"""

import argparse
import base64
import gzip
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TEMPLATE = os.path.join(HERE, "page.html")
TESTDATA = os.path.join(ROOT, "tests", "sim", "testdata")
#: The committed copy, which the Controller's dashboard serves at /playground.
COMMITTED = os.path.join(ROOT, "Controller", "playground.html")
#: The largest page committed (page and wasm together).
COMMIT_LIMIT = 300 * 1024
BUILT_BY = "<!-- built by %s -->\n"


def scenario_commands(text):
    """A scenario file without its traces: the comments, blank lines and commands."""
    keep = [line for line in text.splitlines()
            if not line.strip() or line.startswith("#") or line.startswith("> ")]
    return "".join(line + "\n" for line in keep)


def scenarios(testdata=TESTDATA):
    names = sorted(n for n in os.listdir(testdata) if n.endswith(".txt"))
    out = {}
    for name in names:
        with open(os.path.join(testdata, name), encoding="utf-8") as f:
            out[name] = scenario_commands(f.read())
    return out


def assemble(wasm, template, scenario_map, rustc):
    """The page: ``template`` with the wasm and the scenarios in place."""
    packed = base64.b64encode(gzip.compress(wasm, compresslevel=9, mtime=0)).decode("ascii")
    data = json.dumps(scenario_map, sort_keys=True, ensure_ascii=True).replace("</", "<\\/")
    if template.count('"/*WASM*/"') != 1 or template.count("/*SCENARIOS*/{}") != 1:
        raise ValueError("page.html lacks its /*WASM*/ or /*SCENARIOS*/ place")
    page = template.replace('"/*WASM*/"', '"' + packed + '"', 1)
    page = page.replace("/*SCENARIOS*/{}", data, 1)
    return page.replace("<!doctype html>\n", "<!doctype html>\n" + BUILT_BY % rustc, 1)


def unpack(page):
    """``(wasm bytes, scenarios, the page with both taken out)`` of an assembled page."""
    found = re.search(r'const WASM_GZ_BASE64 = "([A-Za-z0-9+/=]*)";', page)
    data = re.search(r"const SCENARIOS = (\{.*?\});\n", page)
    if not found or not data:
        raise ValueError("not an assembled playground page")
    wasm = gzip.decompress(base64.b64decode(found.group(1)))
    rest = page[:found.start(1)] + page[found.end(1):data.start(1)] + page[data.end(1):]
    return wasm, json.loads(data.group(1).replace("<\\/", "</")), rest


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("wasm", help="the module cargo built for wasm32-unknown-unknown")
    p.add_argument("out", help="where the page goes")
    p.add_argument("--rustc", default="rustc (unknown version)", help="the compiler, for the record")
    p.add_argument("--commit", action="store_true",
                   help="also write Controller/playground.html if the page is at most 300 KB")
    args = p.parse_args(argv)
    with open(args.wasm, "rb") as f:
        wasm = f.read()
    with open(TEMPLATE, encoding="utf-8") as f:
        template = f.read()
    page = assemble(wasm, template, scenarios(), args.rustc.strip()).encode("utf-8")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "wb") as f:
        f.write(page)
    print("playground: %s, %d bytes (the wasm module: %d bytes, %d gzipped)"
          % (args.out, len(page), len(wasm), len(gzip.compress(wasm, compresslevel=9, mtime=0))))
    if args.commit:
        if len(page) > COMMIT_LIMIT:
            print("playground: %d bytes is over %d, %s not written"
                  % (len(page), COMMIT_LIMIT, COMMITTED), file=sys.stderr)
            return 1
        with open(COMMITTED, "wb") as f:
            f.write(page)
        print("playground: %s written" % COMMITTED)
    return 0


if __name__ == "__main__":
    sys.exit(main())
