#!/usr/bin/env python3
"""Send LEADER_INFO to one node: ``python3 Controller/leader_info.py NODE [options]``.

Ask a node who the leader is; prints its reply as one JSON line. Options as controller.py's; see ``--help``.
"""
import sys

import controller

if __name__ == "__main__":
    sys.exit(controller.main(request="LEADER_INFO"))
