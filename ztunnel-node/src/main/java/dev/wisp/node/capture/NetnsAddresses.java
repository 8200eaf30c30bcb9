package dev.wisp.node.capture;

import dev.wisp.linux.NetworkNamespace;
import java.io.IOException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;

/**
 * The pod's own addresses, read inside its network namespace: what {@link CniPlugin} enrolls when it
 * runs in its own conflist ({@code "chained": false}) and so gets no {@code prevResult} from a primary
 * plugin. By then the pod's primary network is up (Multus, which calls such a conflist, runs the
 * cluster's default network first), so its addresses are in the namespace.
 *
 * <p>Global unicast addresses only (no loopback, link-local or multicast). IPv4 comes from the JDK's
 * interface list, which asks a socket opened on the calling thread, so inside the namespace; IPv6
 * from {@code /proc/thread-self/net/if_inet6}, because the JDK reads {@code /proc/net/if_inet6},
 * which is the main thread's namespace, not this thread's.
 */
final class NetnsAddresses {
    private NetnsAddresses() {}

    /** The addresses of {@code netns} (entered on a short-lived thread). */
    static List<InetAddress> read(Path netns) throws IOException {
        return NetworkNamespace.call(netns, () -> {
            List<InetAddress> out = new ArrayList<>();
            for (NetworkInterface nic : Collections.list(NetworkInterface.getNetworkInterfaces())) {
                for (InetAddress a : Collections.list(nic.getInetAddresses())) {
                    if (a instanceof Inet4Address && global(a)) {
                        out.add(a);
                    }
                }
            }
            Path v6 = Path.of("/proc/thread-self/net/if_inet6");
            if (Files.exists(v6)) {
                out.addAll(ipv6(Files.readAllLines(v6)));
            }
            return List.copyOf(out);
        });
    }

    /** The global addresses of {@code /proc/net/if_inet6} lines ({@code ADDRESS IFINDEX PREFIX SCOPE FLAGS NAME}). */
    static List<InetAddress> ipv6(List<String> lines) throws UnknownHostException {
        List<InetAddress> out = new ArrayList<>();
        for (String line : lines) {
            String[] f = line.trim().split("\\s+");
            if (f.length < 6 || f[0].length() != 32) {
                continue;
            }
            InetAddress a = InetAddress.getByAddress(HexFormat.of().parseHex(f[0]));
            if (global(a)) {
                out.add(a);
            }
        }
        return out;
    }

    private static boolean global(InetAddress a) {
        return !a.isLoopbackAddress() && !a.isLinkLocalAddress() && !a.isMulticastAddress() && !a.isAnyLocalAddress();
    }
}
