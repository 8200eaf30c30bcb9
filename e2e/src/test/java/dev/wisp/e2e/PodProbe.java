package dev.wisp.e2e;

import dev.wisp.linux.Libc;
import dev.wisp.linux.NativeException;
import dev.wisp.linux.Sockets;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;

/**
 * Run as a separate process inside a pod (its cgroup and netns) by the tests:
 * {@code connect <ip> <port> <requestBytes>} connects with no proxy settings, prints what
 * {@code getpeername} says, sends a request of exactly that many bytes, prints how many bytes came
 * back and the body; {@code jdk <ip> <port>} does a GET through a plain {@code java.net.Socket};
 * {@code bind <port>} tries to listen on the port and prints the outcome.
 */
public final class PodProbe {
    private PodProbe() {}

    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "connect" -> connect(new InetSocketAddress(InetAddress.getByName(args[1]), Integer.parseInt(args[2])),
                    Integer.parseInt(args[3]));
            case "bind" -> bind(Integer.parseInt(args[1]));
            case "jdk" -> jdk(new InetSocketAddress(InetAddress.getByName(args[1]), Integer.parseInt(args[2])));
            default -> throw new IllegalArgumentException("unknown mode " + args[0]);
        }
    }

    private static void connect(InetSocketAddress to, int requestBytes) throws NativeException {
        int fd = Sockets.connect(to, 0);
        System.out.println("peer=" + Sockets.peerAddress(fd));
        try (Arena arena = Arena.ofConfined()) {
            byte[] req = ("x".repeat(requestBytes - 4) + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII);
            MemorySegment err = Libc.newErrnoBuffer(arena);
            MemorySegment buf = arena.allocate(65536);
            MemorySegment.copy(req, 0, buf, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, req.length);
            long off = 0;
            while (off < req.length) {
                off += Libc.write(fd, buf.asSlice(off), req.length - off, err);
            }
            long total = 0;
            while (true) {
                long n = Libc.read(fd, buf.asSlice(total), buf.byteSize() - total, err);
                if (n <= 0) {
                    break;
                }
                total += n;
            }
            System.out.println("received=" + total);
            String text = new String(buf.asSlice(0, total).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE),
                    StandardCharsets.US_ASCII);
            System.out.println("body=" + text.substring(text.indexOf("\r\n\r\n") + 4).strip());
        } finally {
            Libc.close(fd);
        }
    }

    /** A plain JDK socket: dual-stack (AF_INET6) even for an IPv4 destination, as JDBC drivers use. */
    private static void jdk(InetSocketAddress to) throws java.io.IOException {
        try (java.net.Socket s = new java.net.Socket()) {
            s.connect(to, 10_000);
            s.getOutputStream().write("GET / HTTP/1.0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            String text = new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
            System.out.println("body=" + text.substring(text.indexOf("\r\n\r\n") + 4).strip());
        }
    }

    private static void bind(int port) {
        try {
            int fd = Sockets.listen(new InetSocketAddress(InetAddress.getByAddress(new byte[4]), port), 1);
            System.out.println("bound " + port);
            Libc.close(fd);
        } catch (Exception e) {
            System.out.println("error=" + e.getMessage());
        }
    }
}
