#!/usr/bin/env python3
"""Run a script with the live dashboard beside it: ``python with_dashboard.py SCRIPT [ARGS...]``.

The dashboard (``dashboard.py``, configured by its ``DASHBOARD_*`` variables and ``PEERS``)
serves from a background thread while SCRIPT runs as the main program, with its own arguments,
exit status and signals. When the dashboard cannot start (its port is taken, a bad setting) it
says so on stderr and SCRIPT runs anyway. Neither binds ``Controller:5555``.
"""

import runpy
import sys
import threading

import dashboard


def start_dashboard(argv=()) -> threading.Thread:
    thread = threading.Thread(target=_serve, args=(list(argv),), daemon=True, name="dashboard")
    thread.start()
    return thread


def _serve(argv) -> None:
    try:
        dashboard.main(argv)
    except SystemExit as e:  # a usage error: already explained on stderr
        print("dashboard not started (%s)" % (e.code,), file=sys.stderr, flush=True)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        sys.exit("usage: with_dashboard.py SCRIPT [ARGS...]")
    start_dashboard()
    sys.argv = argv
    runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
