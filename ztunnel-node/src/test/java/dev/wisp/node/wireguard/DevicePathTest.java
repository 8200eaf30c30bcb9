package dev.wisp.node.wireguard;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The device's implementation follows the kernel's module list: netlink with the module, the Java device without. */
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
}
