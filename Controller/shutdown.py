#!/usr/bin/env python3
"""Send SHUTDOWN to one node: ``python3 Controller/shutdown.py NODE [options]``.

Shut a node down (it answers LEADER_INFO with a null leader until a TIMEOUT revives it).
Options as controller.py's; see ``--help``.
"""
import sys

import controller

if __name__ == "__main__":
    sys.exit(controller.main(request="SHUTDOWN"))
