#!/usr/bin/env python3
"""Send LEADER_INFO to one node: ``python3 Controller/leader_info.py NODE [options]``.

Ask a node who the leader is; prints its reply as one JSON line.
Options are those of controller.py (--host, --port, --bind, --timeout, --term,
--key, --value); see ``--help``.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import controller  # noqa: E402

if __name__ == "__main__":
    sys.exit(controller.main(request="LEADER_INFO"))
