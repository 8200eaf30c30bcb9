# A DNS client as a stub resolver that never calls connect(): one query over UDP with sendto()
# (what cgroup/connect4 alone misses) and one over TCP, to SERVER port 53.
# Prints "udp <source of the answer> <A addresses>" and "tcp <A addresses>".
# Usage: python3 dns_probe.py SERVER UDP_NAME TCP_NAME
import socket
import struct
import sys


def query(ident, name):
    q = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode("ascii")
    return q + b"\x00" + struct.pack(">HH", 1, 1)


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
            out.append(socket.inet_ntoa(m[i:i + 4]))
        i += length
    return ",".join(out) or "-"


server, udp_name, tcp_name = sys.argv[1:4]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(10)
u.sendto(query(0x4242, udp_name), (server, 53))
answer, source = u.recvfrom(2048)
print("udp %s:%d %s" % (source[0], source[1], addresses(answer)), flush=True)

t = socket.create_connection((server, 53), timeout=10)
m = query(0x4343, tcp_name)
t.sendall(struct.pack(">H", len(m)) + m)
length = struct.unpack(">H", t.recv(2, socket.MSG_WAITALL))[0]
print("tcp %s" % addresses(t.recv(length, socket.MSG_WAITALL)), flush=True)
