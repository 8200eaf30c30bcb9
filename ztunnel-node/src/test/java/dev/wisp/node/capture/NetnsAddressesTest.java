package dev.wisp.node.capture;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetAddress;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The own-conflist mode's IPv6 addresses, from {@code if_inet6} lines as the kernel writes them. */
class NetnsAddressesTest {
    @Test
    void onlyGlobalAddressesOfIfInet6AreThePods() throws Exception {
        List<String> lines = List.of(
                "00000000000000000000000000000001 01 80 10 80       lo",
                "fe800000000000000c8d3afffe1b2c3d 02 40 20 80     eth0",
                "fd000010024400010000000000000009 02 40 00 80     eth0",
                "20010db8000000000000000000000042 03 40 00 80     net1",
                "garbage");
        assertThat(NetnsAddresses.ipv6(lines)).containsExactly(InetAddress.ofLiteral("fd00:10:244:1::9"), InetAddress
                .ofLiteral("2001:db8::42"));
    }
}
