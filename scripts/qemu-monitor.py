#!/usr/bin/env python3
"""Send commands to a QEMU human monitor on a unix socket; print the replies.

    scripts/qemu-monitor.py SOCKET 'info registers -a' ['info cpus' ...]

Used to see where a stuck nested L1 is (scripts/nested.sh, NESTED_MONITOR).
"""
import socket
import sys
import time


def read_until_prompt(sock, timeout=10.0):
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"(qemu) ") and time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__.strip())
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(sys.argv[1])
    read_until_prompt(sock)  # the banner
    for cmd in sys.argv[2:]:
        sock.sendall(cmd.encode() + b"\n")
        reply = read_until_prompt(sock)
        # The monitor echoes the command line first; drop it and the prompt.
        lines = reply.replace("\r", "").split("\n")
        print(f"(qemu) {cmd}")
        print("\n".join(l for l in lines[1:] if l != "(qemu) "))


if __name__ == "__main__":
    main()
