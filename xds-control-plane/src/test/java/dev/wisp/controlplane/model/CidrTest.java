package dev.wisp.controlplane.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.InetAddress;
import org.junit.jupiter.api.Test;

/** IPv6 prefixes, and IPv4-mapped ones, as {@code ipBlocks} give them. */
class CidrTest {
    @Test
    void anIpv6PrefixContainsItsAddressesOnlyAndNoIpv4One() {
        Cidr c = Cidr.parse("fd00:221::/64");
        assertThat(c.length()).isEqualTo(64);
        assertThat(c.contains(InetAddress.ofLiteral("fd00:221::10"))).isTrue();
        assertThat(c.contains(InetAddress.ofLiteral("fd00:221:1::10"))).isFalse();
        assertThat(c.contains(InetAddress.ofLiteral("10.221.0.10"))).isFalse();
        assertThat(Cidr.parse("fd00:221::10").length()).isEqualTo(128);
        assertThatThrownBy(() -> Cidr.parse("fd00::/129"))
                .hasMessage("'fd00::/129' has a prefix length outside 0..128");
    }

    @Test
    void anIpv4MappedPrefixIsTheIpv4PrefixItMaps() {
        Cidr c = Cidr.parse("::ffff:10.0.0.0/104");
        assertThat(c).isEqualTo(new Cidr(InetAddress.ofLiteral("10.0.0.0"), 8));
        assertThat(c.contains(InetAddress.ofLiteral("10.9.8.7"))).isTrue();
        assertThat(Cidr.parse("::ffff:10.0.0.1")).isEqualTo(new Cidr(InetAddress.ofLiteral("10.0.0.1"), 32));
        assertThatThrownBy(() -> Cidr.parse("::ffff:10.0.0.0/64")).hasMessageContaining(
                "prefix length outside 96..128 (an IPv4-mapped prefix is at least 96 bits)");
    }
}
