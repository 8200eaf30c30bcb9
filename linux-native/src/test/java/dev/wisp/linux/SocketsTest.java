package dev.wisp.linux;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.Arena;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import org.junit.jupiter.api.Test;

class SocketsTest {

    @Test
    void socketAddressesSurviveEncodeAndDecode() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            for (String ip : new String[]{"10.1.2.3", "fd00::1:2"}) {
                InetSocketAddress a = new InetSocketAddress(InetAddress.getByName(ip), 15001);
                assertThat(Sockets.decode(Sockets.encode(arena, a))).isEqualTo(a);
            }
            assertThat(Sockets.encode(arena, new InetSocketAddress(InetAddress.getByName("10.0.0.1"), 80)).byteSize())
                    .isEqualTo(16);
        }
    }

    @Test
    void listenConnectAcceptAndNamesOnLoopback() throws Exception {
        InetSocketAddress any = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
        int listener = Sockets.listen(any, 4);
        int client = -1;
        int accepted = -1;
        try {
            InetSocketAddress bound = Sockets.localAddress(listener);
            assertThat(bound.getPort()).isPositive();
            client = Sockets.connect(bound, 0);
            accepted = Sockets.accept(listener);
            assertThat(Sockets.peerAddress(client)).isEqualTo(bound);
            assertThat(Sockets.peerAddress(accepted)).isEqualTo(Sockets.localAddress(client));

            // Nothing redirected this connection. Without connection tracking in this namespace the
            // call fails and says which call it was; where a NAT table has loaded conntrack (a
            // container engine's rules, say) the kernel answers the tuple as it was: the address the
            // client connected to. Either way no other address may come back.
            int fd = accepted;
            try {
                assertThat(Sockets.originalDestination(fd)).isEqualTo(bound);
            } catch (NativeException e) {
                assertThat(e.call()).isEqualTo("getsockopt(SO_ORIGINAL_DST)");
                assertThat(e.errno()).isPositive();
            }
        } finally {
            for (int fd : new int[]{client, accepted, listener}) {
                if (fd >= 0) {
                    Libc.close(fd);
                }
            }
        }
    }
}
