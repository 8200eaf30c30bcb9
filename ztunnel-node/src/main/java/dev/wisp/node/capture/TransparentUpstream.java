package dev.wisp.node.capture;

import static java.util.Objects.requireNonNull;

import dev.wisp.bpf.capture.PodRef;
import dev.wisp.linux.NetworkNamespace;
import dev.wisp.linux.Sockets;
import dev.wisp.node.proxy.UpstreamSource;
import dev.wisp.node.wireguard.Routes;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.io.IOException;
import java.lang.reflect.Method;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent's connections to a captured pod's application come from the client's address, so that
 * the application (its access log, its IP allow-list) sees who called it, as with ztunnel's in-pod
 * mode. The socket is made inside the pod's network namespace ({@link NetworkNamespace#call}), with
 * {@code IP_TRANSPARENT} ({@code IPV6_TRANSPARENT} for an IPv6 client; so it may be bound to an
 * address that is not the pod's) and
 * {@code SO_MARK} {@link #MARK}, bound to the client's address, port chosen by the kernel; it
 * reaches the application over the pod's loopback (the destination is the pod's own address).
 * Capture's {@code sk_lookup} would steer it to the agent's in-pod inbound listener like any
 * connection to the pod, and the agent would open another, and so on: nothing in the packet tells it
 * apart (the kernel reports it as arriving on the device that holds the pod's address, not on
 * loopback), so the socket's 4-tuple is registered with capture ({@link OwnConnections}) after bind
 * and removed once the connection is settled.
 *
 * <p>The reply path, in the pod's namespace, without iptables: {@code net.ipv4.tcp_fwmark_accept=1}
 * makes the application's accepted socket (and its SYN-ACK) carry the mark of the SYN it accepted,
 * i.e. ours, while every other connection's SYN is unmarked (marks do not cross namespaces) and so
 * stays unmarked (the sysctl covers IPv6 TCP too); a rule {@code fwmark MARK lookup TABLE} and
 * {@code local 0.0.0.0/0 dev lo table TABLE}, and their IPv6 twins ({@code local ::/0}) when the pod
 * has an IPv6 address, deliver what is marked back locally, to the agent's socket, instead of routing it to the
 * client's address. Installed in place when a pod is added: the route replaced, the rule added unless
 * there, never removed first, so that a leftover of an earlier run is reused and, in a take-over
 * ({@code wisp node --takeover}), the old agent's connections, which answer over the same path, never
 * see it missing; removed when the pod is removed and on {@link #close}; the sysctl is set back to
 * what it was.
 *
 * <p>Falls back to the agent's own address, counted in {@code wisp_upstream_source_fallback_total}
 * by reason, when: the destination is not an added pod's address ({@code not_captured}); the client
 * is the destination itself ({@code own_address}: the pod calling itself through the mesh; a
 * socket bound to a local address needs no transparency but would collide with the application's
 * own); the client's address family is not the destination's ({@code family_mismatch}: an IPv4
 * client of a pod's IPv6 address, which HBONE allows; a socket binds one family); the pod's
 * rules could not be installed ({@code not_installed}); the socket could not be made
 * ({@code socket_failed}, e.g. the JVM lacks {@code --add-exports java.base/sun.nio.ch=ALL-UNNAMED},
 * which {@code bin/node-jvm.options} gives it, to read the channel's descriptor); capture could not
 * register the socket's 4-tuple ({@code pass_failed}). The first fallback of each of the last two
 * reasons is logged as a warning, later ones at debug.
 */
public final class TransparentUpstream extends NetnsPodFollower<TransparentUpstream.Pod> implements UpstreamSource {
    private static final Logger LOG = LoggerFactory.getLogger(TransparentUpstream.class);
    /** The mark of the agent's transparent sockets and of the application's replies to them. */
    public static final int MARK = 0x5769;
    /** The routing table, in each pod's namespace, that delivers marked packets locally. */
    public static final int TABLE = 15006;
    /** The preference of the rule that sends marked packets to {@link #TABLE}. */
    public static final int RULE_PREFERENCE = 15006;
    static final Path FWMARK_ACCEPT = Path.of("/proc/sys/net/ipv4/tcp_fwmark_accept");
    private static final List<String> REMOVE = List.of(
            "rule del fwmark " + MARK + " lookup " + TABLE + " pref " + RULE_PREFERENCE,
            "route flush table " + TABLE);
    /**
     * The route first and replaced in place, then the rule, added unless there: a pod whose path is
     * installed already (by the agent a new one takes over from, whose connections use it) never
     * loses it, not even for the moment a delete-then-add would leave.
     */
    private static final List<String> ENSURE = List.of(
            "route replace local 0.0.0.0/0 dev lo table " + TABLE,
            "rule add fwmark " + MARK + " lookup " + TABLE + " pref " + RULE_PREFERENCE);
    /** The same for IPv6 clients, installed when the pod has an IPv6 address. */
    private static final List<String> ENSURE6 = List.of(
            "route replace local ::/0 dev lo table " + TABLE,
            "rule add fwmark " + MARK + " lookup " + TABLE + " pref " + RULE_PREFERENCE);
    /** What {@code ip rule add} says when the rule is there already (the kernel's EEXIST). */
    private static final String EXISTS = "File exists";

    /** An added pod, whether its reply path is installed, and the sysctl value found there before ours. */
    record Pod(PodRef ref, boolean installed, String fwmarkAcceptBefore) {}

    private final Map<InetAddress, Path> netnsByAddress = new ConcurrentHashMap<>();
    /** Addresses of added pods whose reply path could not be installed. */
    private final Set<InetAddress> notInstalled = ConcurrentHashMap.newKeySet();
    private final MeterRegistry registry;
    private final OwnConnections own;
    private final Map<String, Counter> fallbacks = new ConcurrentHashMap<>();
    private final Set<String> warned = ConcurrentHashMap.newKeySet();
    private final Counter transparent;

    /**
     * Lets the agent's own connection from {@code from} to {@code to} through capture's inbound
     * steering ({@code pass}) or forgets it; capture's {@code passOwnConnection}.
     */
    @FunctionalInterface
    public interface OwnConnections {
        void pass(InetSocketAddress from, InetSocketAddress to, boolean pass) throws IOException;
    }

    public TransparentUpstream(MeterRegistry registry, OwnConnections own) {
        this.registry = requireNonNull(registry, "registry");
        this.own = requireNonNull(own, "own");
        this.transparent = Counter.builder("wisp_upstream_source_transparent")
                .description("connections to a captured pod's application made from the client's address")
                .register(registry);
        for (String reason : List.of("not_captured", "own_address", "family_mismatch", "not_installed", "socket_failed",
                "pass_failed")) {
            fallback(reason);
        }
    }

    /** Installs the pod's reply path (after removing a leftover); its connections are transparent from then on. */
    @Override
    protected Pod setUp(PodRef pod) {
        try {
            boolean v6 = pod.ips().stream().anyMatch(ip -> ip instanceof Inet6Address);
            String before = NetworkNamespace.call(pod.netns(), () -> {
                // Never delete-then-add here: in a take-over the old agent's connections to this pod
                // answer over this path, and a reply routed away meanwhile reaches the client pod's
                // node, whose RST kills the application's socket while ours waits for it to the end.
                ensure("-4", ENSURE);
                if (v6) {
                    ensure("-6", ENSURE6);
                } else {
                    ipBatch("-6", REMOVE); // a leftover of an earlier run, unused by anyone now
                }
                // Last: a failure before this leaves the pod's sysctl as it was.
                String was = Files.readString(FWMARK_ACCEPT).strip();
                Files.writeString(FWMARK_ACCEPT, "1");
                return was;
            });
            for (InetAddress ip : pod.ips()) {
                netnsByAddress.put(ip, pod.netns());
            }
            LOG.debug("pod {}: connections to its application come from the client's address", pod.id());
            return new Pod(pod, true, before);
        } catch (IOException | RuntimeException e) {
            LOG.error("pod {}: its application sees the agent's address, not its clients' ({})", pod.id(),
                    e.getMessage());
            uninstall(pod, null);
            notInstalled.addAll(pod.ips());
            return new Pod(pod, false, null);
        }
    }

    /** Removes what {@link #setUp} installed (a namespace already gone has nothing left to remove). */
    @Override
    protected void tearDown(Pod p) {
        p.ref().ips().forEach(netnsByAddress::remove);
        p.ref().ips().forEach(notInstalled::remove);
        if (p.installed()) {
            uninstall(p.ref(), p.fwmarkAcceptBefore());
        }
    }

    private static void uninstall(PodRef pod, String fwmarkAcceptBefore) {
        if (!Files.exists(pod.netns())) {
            return;
        }
        try {
            NetworkNamespace.call(pod.netns(), () -> {
                ipBatch("-4", REMOVE);
                ipBatch("-6", REMOVE);
                if (fwmarkAcceptBefore != null) {
                    Files.writeString(FWMARK_ACCEPT, fwmarkAcceptBefore);
                }
                return null;
            });
        } catch (IOException | RuntimeException e) {
            LOG.warn("pod {}: cannot remove the transparent reply path (rule fwmark {} lookup {}): {}", pod.id(),
                    MARK, TABLE, e.getMessage());
        }
    }

    /** Runs {@code lines} ({@link #ENSURE}'s shape): each must succeed, but for a rule that is there already. */
    private static void ensure(String family, List<String> lines) throws IOException {
        Routes.Batch b = Routes.batch(family, lines);
        for (int line : b.failed()) {
            if (!lines.get(line - 1).startsWith("rule add") || !b.err().contains(EXISTS)) {
                throw new IOException("'ip " + family + " " + lines.get(line - 1) + "' failed: " + b.err().strip());
            }
        }
    }

    /** Runs {@code lines}; a line that fails (nothing to delete) does not stop the rest. */
    private static void ipBatch(String family, List<String> lines) throws IOException {
        Routes.batch(family, lines);
    }

    @Override
    public Optional<Upstream> open(InetAddress source, InetSocketAddress destination) {
        Path netns = netnsByAddress.get(destination.getAddress());
        if (netns == null) {
            return none(notInstalled.contains(destination.getAddress()) ? "not_installed" : "not_captured");
        }
        if (source.equals(destination.getAddress())) {
            return none("own_address");
        }
        boolean v6 = source instanceof Inet6Address;
        if (v6 != destination.getAddress() instanceof Inet6Address) {
            return none("family_mismatch");
        }
        SocketChannel ch;
        try {
            ch = NetworkNamespace.call(netns, () -> {
                SocketChannel c = SocketChannel.open(v6 ? StandardProtocolFamily.INET6 : StandardProtocolFamily.INET);
                try {
                    int fd = descriptor(c);
                    if (v6) {
                        Sockets.setIntOption(fd, Sockets.SOL_IPV6, Sockets.IPV6_TRANSPARENT, 1, "IPV6_TRANSPARENT");
                    } else {
                        Sockets.setIntOption(fd, Sockets.SOL_IP, Sockets.IP_TRANSPARENT, 1, "IP_TRANSPARENT");
                    }
                    Sockets.setIntOption(fd, Sockets.SOL_SOCKET, Sockets.SO_MARK, MARK, "SO_MARK");
                    c.bind(new InetSocketAddress(source, 0));
                    return c;
                } catch (Exception e) {
                    c.close();
                    throw e;
                }
            });
        } catch (IOException | RuntimeException e) {
            return failed("socket_failed", "connection from {} to {} comes from the agent's address: cannot make "
                    + "its socket: {}", source, destination, e.getMessage());
        }
        InetSocketAddress from;
        try {
            from = (InetSocketAddress) ch.getLocalAddress();
            own.pass(from, destination, true);
        } catch (IOException | RuntimeException e) {
            closeQuietly(ch);
            return failed("pass_failed", "connection from {} to {} comes from the agent's address: capture cannot "
                    + "let it through: {}", source, destination, e.getMessage());
        }
        transparent.increment();
        return Optional.of(new Upstream(ch, () -> forget(from, destination)));
    }

    /** Only the SYN is looked up by capture: once connected (or failed), the 4-tuple can go. */
    private void forget(InetSocketAddress from, InetSocketAddress destination) {
        try {
            own.pass(from, destination, false);
        } catch (IOException | RuntimeException e) {
            LOG.debug("capture's entry for {} -> {} stays until evicted: {}", from, destination, e.getMessage());
        }
    }

    private static void closeQuietly(SocketChannel ch) {
        try {
            ch.close();
        } catch (IOException e) {
            LOG.debug("closing an unused transparent socket: {}", e.getMessage());
        }
    }

    private Optional<Upstream> failed(String reason, String message, Object... args) {
        if (warned.add(reason)) {
            LOG.warn(message + " (later ones are logged at debug)", args);
        } else {
            LOG.debug(message, args);
        }
        return none(reason);
    }

    private Optional<Upstream> none(String reason) {
        fallback(reason).increment();
        return Optional.empty();
    }

    private Counter fallback(String reason) {
        return fallbacks.computeIfAbsent(reason, r -> Counter.builder("wisp_upstream_source_fallback")
                .description("connections to a workload of this node made from the agent's address, not the "
                        + "client's, by reason")
                .tag("reason", r).register(registry));
    }

    /** The JDK channel's descriptor (JDK-internal; needs {@code --add-exports java.base/sun.nio.ch}). */
    private static int descriptor(SocketChannel c) throws ReflectiveOperationException {
        Method m = Class.forName("sun.nio.ch.SelChImpl").getMethod("getFDVal");
        return (int) m.invoke(c);
    }
}
