#!/usr/bin/env python3
"""Send TIMEOUT to one node: ``python3 Controller/timeout.py NODE [options]``.

Make a node's election timer fire now (it starts an election).
Options are those of controller.py (--host, --port, --bind, --timeout, --term,
--key, --value); see ``--help``.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import controller  # noqa: E402

if __name__ == "__main__":
    sys.exit(controller.main(request="TIMEOUT"))
