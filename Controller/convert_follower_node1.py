"""The course's example controller, as its handout has it: CONVERT_FOLLOWER to Node1.

    python convert_follower_node1.py        (in the Controller container: docker exec -it Controller sh)

Waits 5 s (so that, run as the container's command, the nodes are up first), fills the
Message.json template (sender_name "Controller", request CONVERT_FOLLOWER), binds
("Controller", 5555) and sends json.dumps(msg).encode() to ("Node1", 5555).  No reply comes back.
"""
import json
import socket
import time
import traceback

time.sleep(5)

with open("Message.json") as f:
    msg = json.load(f)

sender = "Controller"
target = "Node1"
port = 5555

msg["sender_name"] = sender
msg["request"] = "CONVERT_FOLLOWER"
print(f"Request Created : {msg}")

skt = socket.socket(family=socket.AF_INET, type=socket.SOCK_DGRAM)
skt.bind((sender, port))

try:
    skt.sendto(json.dumps(msg).encode("utf-8"), (target, port))
except OSError:
    # socket.gaierror when the target container does not exist or has exited
    print(f"ERROR WHILE SENDING REQUEST ACROSS : {traceback.format_exc()}")
