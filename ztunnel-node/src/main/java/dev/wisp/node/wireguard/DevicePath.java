package dev.wisp.node.wireguard;

import static java.util.Objects.requireNonNull;

import dev.wisp.wireguard.WireGuardDevice;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Which WireGuard implementation carries the node's device: kernel WireGuard, driven over netlink
 * ({@code dev.wisp.wireguard.netlink.KernelWireGuard}), where the kernel has the module
 * ({@code /sys/module/wireguard} exists: loaded, or built in), otherwise the Java device over TUN.
 * {@link #open} tries the kernel when it is selected and falls back to the Java device, with a
 * warning that says why, when the kernel path fails (the family does not resolve, the link cannot be
 * created). {@link #select} is pure apart from one {@link Files#isDirectory} call; thread-safe.
 */
final class DevicePath {
    private static final Logger LOG = LoggerFactory.getLogger(DevicePath.class);

    /** The two implementations. */
    enum Kind {
        KERNEL_NETLINK, JAVA_TUN
    }

    /** The choice and a sentence saying why. */
    record Selection(Kind kind, String reason) {}

    /** Creates a device named {@code iface} with {@code mtu}. */
    @FunctionalInterface
    interface Opener {
        WireGuardDevice open(String iface, int mtu) throws IOException;
    }

    /** The device that runs, which kind it is, and why. */
    record Opened(WireGuardDevice device, Kind kind, String why) {}

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

    /**
     * Opens the selected device: {@code kernel} when the selection is kernel WireGuard, and
     * {@code java} when it is not or when {@code kernel} fails (logged as a warning naming the
     * failure). A failure of {@code java} is the caller's.
     */
    static Opened open(Selection selection, String iface, int mtu, Opener kernel, Opener java) throws IOException {
        requireNonNull(selection, "selection");
        if (selection.kind() == Kind.KERNEL_NETLINK) {
            try {
                WireGuardDevice d = kernel.open(iface, mtu);
                LOG.info("WireGuard: {}; driving kernel WireGuard over netlink", selection.reason());
                return new Opened(d, Kind.KERNEL_NETLINK, selection.reason());
            } catch (IOException | RuntimeException e) {
                String why = selection.reason() + ", but kernel WireGuard cannot be driven: " + e.getMessage();
                LOG.warn("WireGuard: {}; running the Java device over TUN instead", why);
                return new Opened(java.open(iface, mtu), Kind.JAVA_TUN, why);
            }
        }
        LOG.info("WireGuard: {}; running the Java device over TUN", selection.reason());
        return new Opened(java.open(iface, mtu), Kind.JAVA_TUN, selection.reason());
    }
}
