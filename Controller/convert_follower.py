#!/usr/bin/env python3
"""Send CONVERT_FOLLOWER to one node: ``python3 Controller/convert_follower.py NODE [options]``.

Tell a node to step down to follower.
Options are those of controller.py (--host, --port, --bind, --timeout, --term,
--key, --value); see ``--help``.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import controller  # noqa: E402

if __name__ == "__main__":
    sys.exit(controller.main(request="CONVERT_FOLLOWER"))
