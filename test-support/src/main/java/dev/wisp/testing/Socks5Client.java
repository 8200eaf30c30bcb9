package dev.wisp.testing;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

/** A minimal SOCKS5 client (no auth, CONNECT): what an unmodified application would speak. */
public final class Socks5Client {
    private Socks5Client() {}

    /** Connects through {@code proxy} to {@code dst}; returns the reply code (0 = success) and the socket. */
    public static Result connect(InetSocketAddress proxy, InetSocketAddress dst) throws IOException {
        return connect(proxy, dst.getAddress().getAddress(), null, dst.getPort());
    }

    public static Result connect(InetSocketAddress proxy, String host, int port) throws IOException {
        return connect(proxy, null, host, port);
    }

    private static Result connect(InetSocketAddress proxy, byte[] ip, String host, int port) throws IOException {
        Socket s = new Socket();
        s.connect(proxy, 10_000);
        s.setSoTimeout(60_000);
        OutputStream out = s.getOutputStream();
        DataInputStream in = new DataInputStream(s.getInputStream());
        out.write(new byte[]{5, 1, 0});
        out.flush();
        byte[] hello = new byte[2];
        in.readFully(hello);
        if (hello[0] != 5 || hello[1] != 0) {
            s.close();
            throw new IOException("SOCKS5 method refused: " + hello[1]);
        }
        var req = new java.io.ByteArrayOutputStream();
        req.write(new byte[]{5, 1, 0});
        if (host != null) {
            byte[] name = host.getBytes(StandardCharsets.US_ASCII);
            req.write(3);
            req.write(name.length);
            req.write(name);
        } else {
            req.write(ip.length == 4 ? 1 : 4);
            req.write(ip);
        }
        req.write(port >> 8);
        req.write(port & 0xff);
        out.write(req.toByteArray());
        out.flush();
        byte[] head = new byte[4];
        in.readFully(head);
        int rest = switch (head[3]) {
            case 1 -> 4;
            case 4 -> 16;
            case 3 -> in.readUnsignedByte();
            default -> throw new IOException("bad SOCKS5 address type " + head[3]);
        };
        in.readFully(new byte[rest + 2]);
        s.setSoTimeout(0);
        return new Result(head[1], s);
    }

    /** @param reply SOCKS5 reply code: 0 success, 2 not allowed, 4 host unreachable, 1 failure */
    public record Result(int reply, Socket socket) {}
}
