"""A TCP address that takes no connection and refuses none: connects to it hang, as to a host behind a
route that drops packets (a private subnet without NAT reaching for a public mirror).

Usage: black_hole.py PORT READY_FILE. Listens on 127.0.0.1:PORT with a backlog of 0 and fills that
backlog with one connection of its own that it never accepts: Linux then drops every further SYN (the
accept queue is full; net.ipv4.tcp_abort_on_overflow is 0 by default), so a client's connect() waits
until its own timeout. Creates READY_FILE once it is so; runs until killed.
"""

import socket
import sys
import time

listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen(0)
filler = socket.create_connection(listener.getsockname(), timeout=5)
with open(sys.argv[2], "w"):
    pass
while True:
    time.sleep(3600)
