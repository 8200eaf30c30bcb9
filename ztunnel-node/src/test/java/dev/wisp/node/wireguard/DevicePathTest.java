package dev.wisp.node.wireguard;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.wireguard.WireGuard;
import dev.wisp.wireguard.WireGuardDevice;
import dev.wisp.wireguard.netlink.KernelWireGuard;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The device's implementation follows the kernel's module list: netlink with the module, the Java
 * device without; and when kernel WireGuard is selected but cannot be driven, the Java device runs
 * and the reason says why. The fallback case runs the real kernel driver against this machine's
 * kernel, which has no {@code wireguard} family: a module directory is faked, the family lookup is
 * not.
 */
class DevicePathTest {
    @TempDir
    Path sys;

    @Test
    void withoutTheModuleTheJavaDeviceOverTunIsChosen() throws Exception {
        Files.createDirectories(sys.resolve("tun"));
        DevicePath.Selection s = DevicePath.select(sys);
        assertThat(s.kind()).isEqualTo(DevicePath.Kind.JAVA_TUN);
        assertThat(s.reason()).contains("no WireGuard module").contains(sys.resolve("wireguard").toString());
    }

    @Test
    void withTheModuleKernelWireGuardOverNetlinkIsChosen() throws Exception {
        Files.createDirectories(sys.resolve("wireguard"));
        assertThat(DevicePath.select(sys).kind()).isEqualTo(DevicePath.Kind.KERNEL_NETLINK);
    }

    @Test
    void aFileNamedLikeTheModuleIsNotTheModule() throws Exception {
        Files.writeString(sys.resolve("wireguard"), "");
        assertThat(DevicePath.select(sys).kind()).isEqualTo(DevicePath.Kind.JAVA_TUN);
    }

    /** A Java device without TUN, standing for whichever device an opener returns. */
    static WireGuardDevice javaDevice(String iface) throws IOException {
        return WireGuard.builder(iface).withoutTun().start();
    }

    @Test
    void kernelSelectedButItsFamilyMissingFallsBackToTheJavaDeviceSayingWhy() throws Exception {
        Files.createDirectories(sys.resolve("wireguard"));
        DevicePath.Selection s = DevicePath.select(sys);
        assertThat(s.kind()).isEqualTo(DevicePath.Kind.KERNEL_NETLINK);
        // The real driver: on this kernel CTRL_CMD_GETFAMILY "wireguard" answers ENOENT before any link is made.
        DevicePath.Opened opened = DevicePath.open(s, "wisp-dp0", 1420, KernelWireGuard::open,
                (iface, mtu) -> javaDevice(iface));
        try (WireGuardDevice d = opened.device()) {
            assertThat(opened.kind()).isEqualTo(DevicePath.Kind.JAVA_TUN);
            assertThat(d).isNotInstanceOf(KernelWireGuard.class);
            assertThat(d.name()).isEqualTo("wisp-dp0");
            assertThat(opened.why()).contains("the kernel has WireGuard").contains(
                    "kernel WireGuard cannot be driven").contains("CTRL_CMD_GETFAMILY \"wireguard\" failed: ENOENT")
                    .contains("no generic-netlink family \"wireguard\"");
            System.out.println("fallback reason: " + opened.why());
        }
    }

    @Test
    void aKernelDeviceThatOpensIsUsedAndAFailingOneOfAnyKindFallsBack() throws Exception {
        Files.createDirectories(sys.resolve("wireguard"));
        DevicePath.Selection s = DevicePath.select(sys);
        WireGuardDevice standIn = javaDevice("wisp-dp1");
        try (standIn) {
            DevicePath.Opened kernel = DevicePath.open(s, "wisp-dp1", 1420, (iface, mtu) -> standIn, (iface, mtu) -> {
                throw new AssertionError("the Java device must not be opened");
            });
            assertThat(kernel.kind()).isEqualTo(DevicePath.Kind.KERNEL_NETLINK);
            assertThat(kernel.device()).isSameAs(standIn);
        }
        DevicePath.Opened fellBack = DevicePath.open(s, "wisp-dp2", 1420, (iface, mtu) -> {
            throw new IllegalStateException("link refused");
        }, (iface, mtu) -> javaDevice(iface));
        try (WireGuardDevice d = fellBack.device()) {
            assertThat(fellBack.kind()).isEqualTo(DevicePath.Kind.JAVA_TUN);
            assertThat(fellBack.why()).endsWith("kernel WireGuard cannot be driven: link refused");
        }
        Files.delete(sys.resolve("wireguard"));
        DevicePath.Opened plain = DevicePath.open(DevicePath.select(sys), "wisp-dp3", 1420, (iface, mtu) -> {
            throw new AssertionError("no module: the kernel is not tried");
        }, (iface, mtu) -> javaDevice(iface));
        try (WireGuardDevice d = plain.device()) {
            assertThat(plain.kind()).isEqualTo(DevicePath.Kind.JAVA_TUN);
            assertThat(plain.why()).contains("no WireGuard module");
        }
    }
}
