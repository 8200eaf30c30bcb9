package dev.wisp.wireguard.netlink;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.linux.Errno;
import dev.wisp.linux.GenericNetlink;
import dev.wisp.linux.NetlinkException;
import dev.wisp.linux.NetlinkSocket;
import dev.wisp.linux.NetworkNamespace;
import dev.wisp.linux.RtNetlink;
import dev.wisp.testing.Prerequisites;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The kernel driver against this machine's real kernel, in a network namespace of its own (root
 * required: it fails, never skips, without). This kernel has no WireGuard module, so what runs is
 * the refusal path: the {@code wireguard} family is not there (ENOENT naming it) and
 * {@code RTM_NEWLINK} of kind {@code wireguard} is refused by rtnetlink (EOPNOTSUPP, "Unknown device
 * type"), leaving no link behind. On a kernel with the module the same tests assert the opposite
 * (the family resolves, the link is created and deleted), so they say which kernel they ran on.
 */
class KernelWireGuardTest {
    static final boolean MODULE = Files.isDirectory(Path.of("/sys/module/wireguard"));
    Path netns;
    String name;

    @BeforeEach
    void namespace() throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip");
        name = "wispnl-" + ProcessHandle.current().pid();
        ip("netns", "add", name);
        netns = NetworkNamespace.named(name);
    }

    @AfterEach
    void removeNamespace() throws Exception {
        if (netns != null) {
            ip("netns", "del", name);
        }
    }

    static void ip(String... args) throws Exception {
        String[] command = new String[args.length + 1];
        command[0] = "ip";
        System.arraycopy(args, 0, command, 1, args.length);
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as("ip %s: %s", String.join(" ", args), new String(p.getInputStream()
                .readAllBytes())).isZero();
    }

    @Test
    void theWireguardFamilyIsResolvedOrRefusedNamingIt() throws Exception {
        System.out.println("kernel WireGuard module on this machine: " + MODULE);
        try (NetlinkSocket s = NetlinkSocket.open(NetlinkSocket.NETLINK_GENERIC)) {
            if (MODULE) {
                assertThat(GenericNetlink.resolve(s, WireGuardNetlink.FAMILY).id()).isGreaterThan(0x10);
                return;
            }
            assertThatThrownBy(() -> GenericNetlink.resolve(s, WireGuardNetlink.FAMILY)).isInstanceOfSatisfying(
                    NetlinkException.class, e -> assertThat(e.errno()).isEqualTo(Errno.ENOENT))
                    .hasMessageContaining("CTRL_CMD_GETFAMILY \"wireguard\" failed: ENOENT")
                    .hasMessageContaining("no generic-netlink family \"wireguard\" (is its module loaded?)");
        }
    }

    @Test
    void openingTheDeviceFailsOnTheMissingFamilyAndLeavesNoLink() throws Exception {
        if (MODULE) {
            NetworkNamespace.call(netns, () -> {
                try (KernelWireGuard wg = KernelWireGuard.open("wisp-nl0", 1420)) {
                    assertThat(wg.state().ifname()).isEqualTo("wisp-nl0");
                }
                return null;
            });
            return;
        }
        assertThatThrownBy(() -> NetworkNamespace.call(netns, () -> KernelWireGuard.open("wisp-nl0", 1420)))
                .hasRootCauseInstanceOf(NetlinkException.class).hasMessageContaining("family \"wireguard\"")
                .satisfies(e -> System.out.println("opening kernel WireGuard: " + e.getMessage()));
        NetworkNamespace.call(netns, () -> {
            try (NetlinkSocket route = NetlinkSocket.open(NetlinkSocket.NETLINK_ROUTE)) {
                assertThatThrownBy(() -> RtNetlink.link(route, "wisp-nl0")).isInstanceOfSatisfying(
                        NetlinkException.class, e -> assertThat(e.errno()).isEqualTo(Errno.ENODEV));
            }
            return null;
        });
    }

    @Test
    void rtnetlinkRefusesAWireguardLinkWithTheKernelsOwnWords() throws Exception {
        NetworkNamespace.call(netns, () -> {
            try (NetlinkSocket route = NetlinkSocket.open(NetlinkSocket.NETLINK_ROUTE)) {
                if (MODULE) {
                    KernelWireGuard.LinkHandle link = KernelWireGuard.createOrAdopt(route, "wisp-nl0");
                    assertThat(link.created()).isTrue();
                    assertThat(RtNetlink.link(route, "wisp-nl0").kind()).isEqualTo("wireguard");
                    assertThat(KernelWireGuard.createOrAdopt(route, "wisp-nl0")).isEqualTo(
                            new KernelWireGuard.LinkHandle(link.index(), false));
                    RtNetlink.deleteLink(route, link.index());
                    return null;
                }
                assertThatThrownBy(() -> KernelWireGuard.createOrAdopt(route, "wisp-nl0")).isInstanceOfSatisfying(
                        NetlinkException.class, e -> {
                            assertThat(e.errno()).isEqualTo(Errno.EOPNOTSUPP);
                            assertThat(e.kernelMessage()).isEqualTo("Unknown device type");
                            System.out.println("the kernel's refusal: " + e.getMessage());
                        }).hasMessageContaining("RTM_NEWLINK wisp-nl0 kind wireguard failed: EOPNOTSUPP")
                        .hasMessageContaining("cannot create links of kind \"wireguard\"");
                assertThatThrownBy(() -> RtNetlink.link(route, "wisp-nl0")).as("no link left behind")
                        .isInstanceOfSatisfying(NetlinkException.class, e -> assertThat(e.errno()).isEqualTo(
                                Errno.ENODEV));
                // A link of that name that is not WireGuard is not adopted.
                assertThatThrownBy(() -> KernelWireGuard.createOrAdopt(route, "lo")).isInstanceOfSatisfying(
                        NetlinkException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EEXIST))
                        .hasMessageContaining("not wireguard");
            }
            return null;
        });
    }

    @Test
    void rtnetlinkChangesALinksMtuAndBringsItUp() throws Exception {
        NetworkNamespace.call(netns, () -> {
            try (NetlinkSocket route = NetlinkSocket.open(NetlinkSocket.NETLINK_ROUTE)) {
                RtNetlink.Link lo = RtNetlink.link(route, "lo");
                assertThat(lo.up()).as("a fresh namespace's loopback starts down").isFalse();
                RtNetlink.setMtuAndUp(route, lo.index(), 9000);
                RtNetlink.Link after = RtNetlink.link(route, "lo");
                assertThat(after.up()).isTrue();
                assertThat(after.mtu()).isEqualTo(9000);
                assertThatThrownBy(() -> RtNetlink.setMtuAndUp(route, 999_999, 1500)).isInstanceOfSatisfying(
                        NetlinkException.class, e -> assertThat(e.errno()).isEqualTo(Errno.ENODEV));
            }
            return null;
        });
    }
}
