package dev.wisp.node.wireguard;

import static java.util.Objects.requireNonNull;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Which WireGuard implementation would carry the node's device: kernel WireGuard, configured over
 * generic netlink ({@code dev.wisp.wireguard.netlink.WireGuardNetlink} encodes its messages), where
 * the kernel has the module ({@code /sys/module/wireguard} exists: loaded, or built in), otherwise
 * the Java device over TUN. Only the Java device runs today: the netlink side is message encoding
 * (no socket code, and no machine here has the module to test one against), so
 * {@link MeshWireGuard} logs a kernel selection and still starts the Java device. Pure apart from
 * one {@link Files#isDirectory} call; thread-safe.
 */
final class DevicePath {
    /** The two implementations. */
    enum Kind {
        KERNEL_NETLINK, JAVA_TUN
    }

    /** The choice and a sentence saying why. */
    record Selection(Kind kind, String reason) {}

    /** Where the kernel lists its modules. */
    static final Path SYS_MODULE = Path.of("/sys/module");

    private DevicePath() {}

    /** The choice on a machine whose module list is {@code sysModule}. */
    static Selection select(Path sysModule) {
        requireNonNull(sysModule, "sysModule");
        Path module = sysModule.resolve("wireguard");
        if (Files.isDirectory(module)) {
            return new Selection(Kind.KERNEL_NETLINK, "the kernel has WireGuard (" + module + ")");
        }
        return new Selection(Kind.JAVA_TUN, "the kernel has no WireGuard module (no " + module + ")");
    }
}
