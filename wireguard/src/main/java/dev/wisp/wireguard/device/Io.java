package dev.wisp.wireguard.device;

import java.net.InetSocketAddress;

/**
 * Where the protocol core's output goes: the UDP socket and the TUN device in production, queues in
 * tests. Called from the core's calling threads; implementations must be thread-safe and must not
 * keep {@code buf} after returning (the core reuses it). {@code writeTun} may overwrite the 16
 * bytes before {@code off} (the spent transport header), e.g. with a TUN {@code virtio_net_hdr}.
 */
public interface Io {
    void sendUdp(InetSocketAddress to, byte[] buf, int off, int len);

    void writeTun(byte[] buf, int off, int len);
}
