package dev.wisp.linux;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The netlink socket against this machine's kernel: the generic-netlink controller ({@code nlctrl},
 * always present) resolved and dumped, a family the kernel does not have refused with ENOENT, and
 * rtnetlink's link lookup. No privilege needed (nothing is changed); the wireguard link's creation
 * is tested as root in a namespace of its own ({@code KernelWireGuardTest} in {@code wireguard}).
 */
class NetlinkKernelTest {
    @Test
    void theControllerResolvesItselfWithItsOperationsAndMulticastGroup() throws Exception {
        try (NetlinkSocket s = NetlinkSocket.open(NetlinkSocket.NETLINK_GENERIC)) {
            GenericNetlink.Family ctrl = GenericNetlink.resolve(s, "nlctrl");
            assertThat(ctrl.id()).isEqualTo(GenericNetlink.GENL_ID_CTRL).isEqualTo(0x10);
            assertThat(ctrl.name()).isEqualTo("nlctrl");
            assertThat(ctrl.version()).isEqualTo(2);
            System.out.println("nlctrl as this kernel describes it: " + ctrl);
            assertThat(ctrl.operations()).extracting(GenericNetlink.Operation::id)
                    .contains(GenericNetlink.CTRL_CMD_GETFAMILY);
            // GETFAMILY can be asked for one family (GENL_CMD_CAP_DO, 0x2) and dumped (GENL_CMD_CAP_DUMP, 0x4).
            assertThat(ctrl.operations()).filteredOn(o -> o.id() == GenericNetlink.CTRL_CMD_GETFAMILY).singleElement()
                    .satisfies(o -> assertThat(o.flags() & 0x6).isEqualTo(0x6));
            // The controller announces family changes on its "notify" group, id 0x10 (GENL_ID_CTRL).
            assertThat(ctrl.multicastGroups()).containsEntry("notify", 0x10);
            // A second request on the same socket gets its own answer (a fresh sequence number).
            assertThat(GenericNetlink.resolve(s, "nlctrl")).isEqualTo(ctrl);
        }
    }

    @Test
    void theDumpListsEveryFamilyAndEachResolvesToTheSameId() throws Exception {
        try (NetlinkSocket s = NetlinkSocket.open(NetlinkSocket.NETLINK_GENERIC)) {
            List<GenericNetlink.Family> all = GenericNetlink.families(s);
            assertThat(all).extracting(GenericNetlink.Family::name).contains("nlctrl").doesNotHaveDuplicates();
            Set<Integer> ids = new HashSet<>();
            for (GenericNetlink.Family f : all) {
                assertThat(ids.add(f.id())).as("family id %d of %s unique", f.id(), f.name()).isTrue();
                assertThat(GenericNetlink.resolve(s, f.name()).id()).as(f.name()).isEqualTo(f.id());
            }
            System.out.println("generic-netlink families of this kernel: " + all.stream().map(f -> f.name() + "="
                    + f.id()).toList());
        }
    }

    @Test
    void aFamilyTheKernelLacksIsEnoentNamingIt() throws Exception {
        try (NetlinkSocket s = NetlinkSocket.open(NetlinkSocket.NETLINK_GENERIC)) {
            assertThatThrownBy(() -> GenericNetlink.resolve(s, "wisp-nofamily"))
                    .isInstanceOfSatisfying(NetlinkException.class, e -> assertThat(e.errno()).isEqualTo(Errno.ENOENT))
                    .hasMessageContaining("CTRL_CMD_GETFAMILY \"wisp-nofamily\" failed: ENOENT")
                    .hasMessageContaining("no generic-netlink family \"wisp-nofamily\"");
            // A name longer than GENL_NAMSIZ is refused by the attribute policy, before any lookup.
            assertThatThrownBy(() -> GenericNetlink.resolve(s, "a-name-of-twenty-chars"))
                    .isInstanceOfSatisfying(NetlinkException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
            // The socket goes on answering after a refusal.
            assertThat(GenericNetlink.resolve(s, "nlctrl").id()).isEqualTo(0x10);
        }
    }

    @Test
    void rtnetlinkFindsLoopbackAndRefusesAnUnknownLink() throws Exception {
        try (NetlinkSocket s = NetlinkSocket.open(NetlinkSocket.NETLINK_ROUTE)) {
            RtNetlink.Link lo = RtNetlink.link(s, "lo");
            assertThat(lo.name()).isEqualTo("lo");
            assertThat(lo.index()).isPositive();
            assertThat(lo.mtu()).isPositive();
            assertThat(lo.kind()).isNull();
            assertThatThrownBy(() -> RtNetlink.link(s, "wisp-nolink0"))
                    .isInstanceOfSatisfying(NetlinkException.class, e -> assertThat(e.errno()).isEqualTo(Errno.ENODEV))
                    .hasMessageContaining("RTM_GETLINK wisp-nolink0 failed: ENODEV");
        }
    }
}
