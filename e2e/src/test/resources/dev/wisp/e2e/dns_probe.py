# A DNS client as a stub resolver that never calls connect(): one query over UDP with sendto()
# (what cgroup/connect4/6 alone miss) and one over TCP, to SERVER port 53. SERVER is an IPv4 or an
# IPv6 address (an AF_INET6 socket then, so "::ffff:a.b.c.d" is IPv4 through a dual-stack socket).
# A name may end in "/AAAA" to ask for IPv6 addresses instead of IPv4 ones.
# Prints "udp <source of the answer> <addresses>" and "tcp <addresses>" (an IPv6 source as
# "[address]:port").
# Usage: python3 dns_probe.py SERVER UDP_NAME[/AAAA] TCP_NAME[/AAAA]
import socket
import struct
import sys

TYPES = {"A": 1, "AAAA": 28}


def query(ident, name):
    name, _, qtype = name.partition("/")
    q = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode("ascii")
    return q + b"\x00" + struct.pack(">HH", TYPES[qtype or "A"], 1)


def skip_name(m, i):
    while True:
        n = m[i]
        if n & 0xC0 == 0xC0:
            return i + 2
        if n == 0:
            return i + 1
        i += 1 + n


def addresses(m):
    count = struct.unpack(">H", m[6:8])[0]
    i = skip_name(m, 12) + 4
    out = []
    for _ in range(count):
        i = skip_name(m, i)
        rtype, _, _, length = struct.unpack(">HHIH", m[i:i + 10])
        i += 10
        if rtype == 1 and length == 4:
            out.append(socket.inet_ntop(socket.AF_INET, m[i:i + 4]))
        if rtype == 28 and length == 16:
            out.append(socket.inet_ntop(socket.AF_INET6, m[i:i + 16]))
        i += length
    return ",".join(out) or "-"


server, udp_name, tcp_name = sys.argv[1:4]
family = socket.AF_INET6 if ":" in server else socket.AF_INET
u = socket.socket(family, socket.SOCK_DGRAM)
u.settimeout(10)
u.sendto(query(0x4242, udp_name), (server, 53))
answer, source = u.recvfrom(2048)
shown = "[%s]" % source[0] if family == socket.AF_INET6 else source[0]
print("udp %s:%d %s" % (shown, source[1], addresses(answer)), flush=True)

t = socket.socket(family, socket.SOCK_STREAM)
t.settimeout(10)
t.connect((server, 53))
m = query(0x4343, tcp_name)
t.sendall(struct.pack(">H", len(m)) + m)
length = struct.unpack(">H", t.recv(2, socket.MSG_WAITALL))[0]
print("tcp %s" % addresses(t.recv(length, socket.MSG_WAITALL)), flush=True)
