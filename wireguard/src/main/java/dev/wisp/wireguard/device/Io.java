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

    /**
     * Sends the datagrams {@code buf[off[i], off[i]+len[i])}, {@code i < count}, to {@code to} in
     * this order, skipping those with a negative length (one {@code sendmmsg} where possible).
     */
    default void sendUdp(InetSocketAddress to, byte[] buf, int[] off, int[] len, int count) {
        for (int i = 0; i < count; i++) {
            if (len[i] >= 0) {
                sendUdp(to, buf, off[i], len[i]);
            }
        }
    }

    /**
     * A writer for one ordered stream of decrypted packets (one peer's); it may hold packets back
     * (e.g. to coalesce TCP segments) until {@link TunStream#flush}. Used by one thread at a time.
     */
    default TunStream openTunStream() {
        return new TunStream() {
            @Override
            public void write(byte[] buf, int off, int len) {
                writeTun(buf, off, len);
            }

            @Override
            public void flush() {}
        };
    }

    /** See {@link #openTunStream}; {@code write} has {@link #writeTun}'s contract. */
    interface TunStream {
        void write(byte[] buf, int off, int len);

        void flush();
    }
}
