package dev.wisp.base;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class IpTextTest {
    /** Inputs in every form Java parses; outputs in RFC 5952's. */
    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource({"10.0.0.1, 10.0.0.1", "fd00:223:1:0:0:0:0:10, fd00:223:1::10", "FD00:0223:0001::0010, fd00:223:1::10",
            // 4.2.2: a single zero group is not folded.
            "2001:db8:0:1:1:1:1:1, 2001:db8:0:1:1:1:1:1",
            // 4.2.3: the longest run wins; on a tie, the first.
            "2001:0:0:1:0:0:0:1, 2001:0:0:1::1", "2001:db8:0:0:1:0:0:1, 2001:db8::1:0:0:1",
            "0:0:0:0:0:0:0:0, ::", "0:0:0:0:0:0:0:1, ::1", "fd00:0:0:0:0:0:0:0, fd00::", "1:0:0:0:0:0:0:0, 1::",
            "0:0:0:0:0:0:0:ffff, ::ffff", "fe80:0:0:0:0:0:0:1%1, fe80::1",
            // Java turns a mapped literal into IPv4.
            "::ffff:10.0.0.1, 10.0.0.1"})
    void writesTheShortForm(String in, String out) {
        assertThat(IpText.of(InetAddress.ofLiteral(in))).isEqualTo(out);
    }

    @Test
    void aMappedInet6AddressKeepsItsPrefixWithDottedIpv4() throws Exception {
        byte[] mapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (byte) 0xff, (byte) 0xff, 10, 0, 0, 7};
        assertThat(IpText.of(Inet6Address.getByAddress(null, mapped, -1))).isEqualTo("::ffff:10.0.0.7");
    }

    @Test
    void hostPortBracketsIpv6Only() {
        assertThat(IpText.hostPort(new InetSocketAddress(InetAddress.ofLiteral("fd00:223:1:0:0:0:0:10"), 8080)))
                .isEqualTo("[fd00:223:1::10]:8080");
        assertThat(IpText.hostPort(InetAddress.ofLiteral("10.223.1.10"), 0)).isEqualTo("10.223.1.10:0");
        assertThat(IpText.hostPort(InetSocketAddress.createUnresolved("cp.local", 15012))).isEqualTo("cp.local:15012");
    }
}
