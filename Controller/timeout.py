#!/usr/bin/env python3
"""Send TIMEOUT to one node: ``python3 Controller/timeout.py NODE [options]``.

Make a node's election timer fire now (it starts an election). Options as controller.py's; see ``--help``.
"""
import sys

import controller

if __name__ == "__main__":
    sys.exit(controller.main(request="TIMEOUT"))
