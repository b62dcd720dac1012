#!/usr/bin/env python3
"""Send SHUTDOWN to one node: ``python3 Controller/shutdown.py NODE [options]``.

Shut a node down (it answers LEADER_INFO with a null leader until a TIMEOUT revives it).
Options are those of controller.py (--host, --port, --bind, --timeout, --term,
--key, --value); see ``--help``.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import controller  # noqa: E402

if __name__ == "__main__":
    sys.exit(controller.main(request="SHUTDOWN"))
