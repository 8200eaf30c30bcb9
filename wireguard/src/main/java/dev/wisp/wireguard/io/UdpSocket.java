package dev.wisp.wireguard.io;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.DatagramChannel;

/**
 * The device's UDP socket: one dual-stack IPv6 socket (IPv4 peers appear as mapped addresses and are
 * reported as IPv4), blocking, with large kernel buffers so bursts are not dropped. Sends may come
 * from any thread; one thread receives. Replaced as a whole when the listen port changes.
 */
final class UdpSocket implements AutoCloseable {
    private static final int BUFFER_BYTES = 8 << 20;
    private final DatagramChannel channel;
    private final int port;

    UdpSocket(int port) throws IOException {
        DatagramChannel ch = DatagramChannel.open(StandardProtocolFamily.INET6);
        try {
            ch.setOption(StandardSocketOptions.SO_RCVBUF, BUFFER_BYTES);
            ch.setOption(StandardSocketOptions.SO_SNDBUF, BUFFER_BYTES);
            ch.bind(new InetSocketAddress(port));
        } catch (IOException e) {
            ch.close();
            throw new IOException("cannot bind UDP port " + port + ": " + e.getMessage()
                    + " (is another WireGuard device or program using it?)", e);
        }
        this.channel = ch;
        this.port = ((InetSocketAddress) ch.getLocalAddress()).getPort();
    }

    int port() {
        return port;
    }

    /** Receives one datagram into {@code buf}; returns its source, or null once closed. */
    InetSocketAddress receive(ByteBuffer buf) throws IOException {
        try {
            SocketAddress from = channel.receive(buf);
            return (InetSocketAddress) from;
        } catch (ClosedChannelException e) {
            return null;
        }
    }

    /** Sends; failures (unreachable, closed) drop the packet as a lossy network would. */
    boolean send(ByteBuffer data, InetSocketAddress to) {
        try {
            return channel.send(data, to) > 0;
        } catch (IOException e) {
            return false;
        }
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
