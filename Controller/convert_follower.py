#!/usr/bin/env python3
"""Send CONVERT_FOLLOWER to one node: ``python3 Controller/convert_follower.py NODE [options]``.

Tell a node to step down to follower. Options as controller.py's; see ``--help``.
"""
import sys

import controller

if __name__ == "__main__":
    sys.exit(controller.main(request="CONVERT_FOLLOWER"))
