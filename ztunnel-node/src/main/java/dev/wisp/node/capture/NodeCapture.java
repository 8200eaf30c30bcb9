package dev.wisp.node.capture;

import java.time.Duration;
import dev.wisp.base.Threads;
import static java.util.Objects.requireNonNull;

import dev.wisp.bpf.BpfException;
import dev.wisp.bpf.capture.Capture;
import dev.wisp.bpf.capture.CaptureConfig;
import dev.wisp.bpf.capture.PodRef;
import dev.wisp.linux.Cgroups;
import dev.wisp.linux.NativeException;
import dev.wisp.linux.Sockets;
import dev.wisp.node.proxy.InboundPlaintext;
import dev.wisp.node.proxy.OriginalDestinationResolver;
import io.netty.channel.unix.UnixChannel;
import java.io.IOException;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchService;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * eBPF capture in the node agent ({@code wisp node --capture}): opens {@link Capture}, enrolls
 * and removes the node's pods as their files appear in and disappear from the pods directory
 * ({@link PodFile}), keeps a plaintext inbound listener in each enrolled pod's network namespace
 * ({@link InPodListener}), resolves the outbound listener's original destinations from the eBPF
 * map, and keeps the last flow events for the admin API's {@code /flows}.
 *
 * <p>Lifecycle (driven by {@code NodeRuntime}): {@link #open} before the agent's listeners (they need
 * {@link #resolver()}), {@link #start} once they listen, {@link #close} when the agent stops accepting. Closing leaves the pinned
 * programs attached, so pods stay captured while the agent restarts; the next run re-adopts them
 * ({@code Capture.open} re-points the pinned links) and enrolls each pod file again, which is
 * idempotent.
 *
 * <p>Threads: the pods directory is watched and reconciled on one platform thread
 * ({@code wisp-pods}), which alone touches {@link #pods}; {@link #close} stops it first. Flow events
 * arrive on capture's ring buffer thread.
 */
public final class NodeCapture implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(NodeCapture.class);

    /**
     * @param podsDir where the node's pod files appear (one {@code <uid>.json} per pod)
     * @param pinRoot where capture pins its maps and links (one per node agent)
     * @param outbound the agent's outbound listener as pods reach it over IPv4 (a node address, port
     *     15001), or empty on an IPv6-only node: pods' IPv4 connects then go where they were sent
     * @param outbound6 the same listener as pods reach it over IPv6 (a node's IPv6 address), or empty:
     *     pods' IPv6 connects then go where they were sent, around the mesh
     * @param inboundPort the in-pod plaintext inbound port (15006)
     * @param flowCapacity how many flow events {@code /flows} keeps
     */
    public record Settings(Path podsDir, Path pinRoot, Optional<InetSocketAddress> outbound,
            Optional<InetSocketAddress> outbound6, int inboundPort, int flowCapacity) {
        public Settings {
            requireNonNull(podsDir, "podsDir");
            requireNonNull(pinRoot, "pinRoot");
            requireNonNull(outbound, "outbound");
            requireNonNull(outbound6, "outbound6");
            if (outbound.isEmpty() && outbound6.isEmpty()) {
                throw new IllegalArgumentException("capture needs an outbound listener of either family");
            }
        }

        /**
         * The listeners pods are steered to: the outbound port on {@code address} (default: the node's
         * first IPv4 address, or its first global IPv6 one on an IPv6-only node). IPv6 connects are
         * steered only when {@code listenersTakeIpv6} (bound to "::" or an IPv6 address): steered to a
         * listener that is not there, they would fail rather than bypass the mesh. An IPv6
         * {@code address} is the IPv6 listener, and IPv4 connects (an IPv6-only node has none) are left alone.
         */
        public static Settings forNode(Path podsDir, Path pinRoot, Optional<InetAddress> address,
                boolean listenersTakeIpv6, int outboundPort, int inboundPort, int flowCapacity) throws SocketException {
            InetAddress node = address.isPresent() ? address.get() : defaultNodeAddress();
            if (node instanceof Inet6Address) {
                if (!listenersTakeIpv6) {
                    throw new IllegalArgumentException("capture address " + node.getHostAddress() + " is IPv6 but "
                            + "the listeners take IPv4 only: bind them to \"::\" or an IPv6 address (--bind ::)");
                }
                return new Settings(podsDir, pinRoot, Optional.empty(), Optional.of(new InetSocketAddress(node,
                        outboundPort)), inboundPort, flowCapacity);
            }
            Optional<InetSocketAddress> out6 = listenersTakeIpv6
                    ? defaultNodeAddress6().map(a -> new InetSocketAddress(a, outboundPort))
                    : Optional.empty();
            return new Settings(podsDir, pinRoot, Optional.of(new InetSocketAddress(node, outboundPort)), out6,
                    inboundPort, flowCapacity);
        }
    }

    /** A pod this run has enrolled and its in-pod listener; owned by the {@code wisp-pods} thread. */
    private record Enrolled(PodRef pod, List<InPodListener> listeners) {}

    private final Settings settings;
    private final Capture capture;
    private final FlowRing flows;
    private final WatchService watcher;
    // Owned by the wisp-pods thread (and by close(), after that thread has ended).
    private final Map<String, Enrolled> pods = new HashMap<>();
    /** Told about every pod enrolled, and every pod id removed, on the {@code wisp-pods} thread. */
    private Consumer<PodRef> enrolled;
    private Consumer<String> removed;
    /** Makes the in-pod inbound listeners: the agent's, sharing its state, loops and telemetry. */
    private Function<OriginalDestinationResolver, InboundPlaintext> inbound;
    private Thread thread;
    private AutoCloseable subscription;
    private volatile boolean closed;
    private volatile boolean dnsRedirected;

    private NodeCapture(Settings settings, Capture capture, WatchService watcher) {
        this.settings = settings;
        this.capture = capture;
        this.watcher = watcher;
        this.flows = new FlowRing(settings.flowCapacity());
    }

    /** Loads and attaches the programs (needs root: CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN). */
    public static NodeCapture open(Settings settings) throws IOException {
        requireNonNull(settings, "settings");
        if (!Files.isDirectory(settings.podsDir())) {
            throw new IOException("pods directory " + settings.podsDir() + " does not exist: create it (the pod "
                    + "plumbing writes one <uid>.json per pod there)");
        }
        List<InetAddress> nodeAddresses = nodeAddresses();
        CaptureConfig config = CaptureConfig.of(Cgroups.ofCurrentProcess(), settings.outbound().orElse(null),
                settings.outbound6().orElse(null), nodeAddresses).withPinRoot(settings.pinRoot());
        Capture capture;
        try {
            capture = Capture.open(config);
        } catch (BpfException e) {
            throw new IOException("cannot start eBPF capture: " + e.getMessage(), e);
        }
        WatchService watcher;
        try {
            watcher = settings.podsDir().getFileSystem().newWatchService();
            settings.podsDir().register(watcher, StandardWatchEventKinds.ENTRY_CREATE,
                    StandardWatchEventKinds.ENTRY_DELETE, StandardWatchEventKinds.ENTRY_MODIFY);
        } catch (IOException e) {
            capture.close();
            throw e;
        }
        LOG.info("eBPF capture open: outbound {} (IPv6: {}) pins {} bypass {}", settings.outbound().map(
                InetSocketAddress::toString).orElse("not captured"), settings.outbound6()
                        .map(
                                InetSocketAddress::toString)
                        .orElse("not captured"),
                settings.pinRoot(),
                nodeAddresses);
        return new NodeCapture(settings, capture, watcher);
    }

    /** Every address of this node's network namespace: connections from them are never captured. */
    static List<InetAddress> nodeAddresses() throws SocketException {
        List<InetAddress> out = new ArrayList<>();
        for (NetworkInterface nif : NetworkInterface.networkInterfaces().toList()) {
            nif.inetAddresses().filter(a -> !a.isLoopbackAddress()).forEach(out::add);
        }
        return out;
    }

    /**
     * The first non-loopback IPv4 address of this node, else (an IPv6-only node) its first global IPv6
     * address: where pods reach the outbound listener by default.
     */
    public static InetAddress defaultNodeAddress() throws SocketException {
        Optional<InetAddress> v4 = nodeAddresses().stream().filter(a -> a instanceof Inet4Address && !a
                .isLinkLocalAddress()).findFirst();
        if (v4.isPresent()) {
            return v4.get();
        }
        return defaultNodeAddress6().orElseThrow(() -> new SocketException("this node has no IPv4 address nor a "
                + "global IPv6 one for the outbound listener: give --capture-address"));
    }

    /**
     * The first global IPv6 address of this node (not loopback, link-local or IPv4-mapped): where pods
     * reach the outbound listener over IPv6, or empty when the node has none.
     */
    public static Optional<InetAddress> defaultNodeAddress6() throws SocketException {
        return nodeAddresses().stream().filter(a -> a instanceof Inet6Address && !a.isLinkLocalAddress()
                && !a.isLoopbackAddress()).findFirst();
    }

    /** See {@link Capture#passOwnConnection}. */
    public void passOwnConnection(InetSocketAddress from, InetSocketAddress to, boolean pass) throws IOException {
        capture.passOwnConnection(from, to, pass);
    }

    /**
     * The outbound (15001) resolver: the eBPF map keyed by the accepted socket's 4-tuple; with
     * a native transport (io_uring), {@code getsockopt(SO_ORIGINAL_DST)} on the socket as a fallback
     * (answered by the same map through capture's getsockopt hook, or by conntrack under iptables).
     */
    public OriginalDestinationResolver resolver() {
        return ch -> {
            if (!(ch.localAddress() instanceof InetSocketAddress local)
                    || !(ch.remoteAddress() instanceof InetSocketAddress remote)) {
                return Optional.empty();
            }
            try {
                Optional<InetSocketAddress> d = capture.originalDestination(local, remote);
                if (d.isPresent()) {
                    return d;
                }
            } catch (BpfException e) {
                LOG.debug("original destination of {} from the eBPF map: {}", remote, e.getMessage());
            }
            if (ch instanceof UnixChannel unix) {
                try {
                    return Optional.of(Sockets.originalDestination(unix.fd().intValue()));
                } catch (NativeException e) {
                    LOG.debug("getsockopt(SO_ORIGINAL_DST) of {}: {}", remote, e.getMessage());
                }
            }
            return Optional.empty();
        };
    }

    /**
     * Starts recording flow events and following the pods directory; each enrolled pod gets an
     * in-pod listener made by {@code inbound} (the agent's plaintext inbound handler over a
     * resolver). {@code enrolled} is told about each pod enrolled and {@code removed} each pod id
     * removed (the agent's Workload API and DNS listeners serve enrolled pods).
     */
    public synchronized void start(Function<OriginalDestinationResolver, InboundPlaintext> inbound,
            Consumer<PodRef> enrolled, Consumer<String> removed) throws IOException {
        this.inbound = requireNonNull(inbound, "inbound");
        this.enrolled = requireNonNull(enrolled, "enrolled");
        this.removed = requireNonNull(removed, "removed");
        try {
            subscription = capture.subscribe(e -> flows.add(Instant.now(), e));
        } catch (BpfException e) {
            throw new IOException("cannot read capture's flow events: " + e.getMessage(), e);
        }
        reconcile(true);
        thread = Thread.ofPlatform().name("wisp-pods").daemon().start(this::watch);
    }

    private void watch() {
        while (!closed) {
            try {
                var key = watcher.poll(500, TimeUnit.MILLISECONDS);
                if (key == null) {
                    continue;
                }
                key.pollEvents();
                key.reset();
                reconcile(false);
            } catch (InterruptedException | ClosedWatchServiceException e) {
                return;
            }
        }
    }

    /**
     * Makes the enrolled set equal the pod files. On the first pass, pods enrolled by an earlier run
     * whose file is gone are removed too.
     */
    private void reconcile(boolean first) {
        Map<String, PodRef> wanted = new HashMap<>();
        try (DirectoryStream<Path> files = Files.newDirectoryStream(settings.podsDir())) {
            for (Path f : files) {
                if (PodFile.uidOf(f) == null) {
                    continue;
                }
                try {
                    PodRef pod = PodFile.read(f);
                    wanted.put(pod.id(), pod);
                } catch (IOException e) {
                    // A file being replaced or malformed: skipped until the next change.
                    LOG.warn("ignoring {}: {}", f, e.getMessage());
                }
            }
        } catch (IOException e) {
            LOG.error("cannot read the pods directory {}: {}", settings.podsDir(), e.getMessage());
            return;
        }
        Set<String> gone = new HashSet<>(pods.keySet());
        if (first) {
            gone.addAll(capture.enrolled());
        }
        gone.removeAll(wanted.keySet());
        for (String uid : gone) {
            remove(uid);
        }
        for (PodRef pod : wanted.values()) {
            Enrolled now = pods.get(pod.id());
            if (now != null && now.pod().equals(pod)) {
                continue;
            }
            if (now != null) {
                remove(pod.id());
            }
            enroll(pod);
        }
    }

    private void enroll(PodRef pod) {
        List<InPodListener> listeners = new ArrayList<>();
        try {
            capture.enroll(pod);
            if (pod.netns() != null) {
                for (InetAddress ip : pod.ips()) {
                    InPodListener l = InPodListener.open(inbound, pod.netns(),
                            new InetSocketAddress(ip, settings.inboundPort()));
                    listeners.add(l);
                    capture.setInboundListener(ip, l.fd);
                }
            }
            pods.put(pod.id(), new Enrolled(pod, List.copyOf(listeners)));
            enrolled.accept(pod);
            confirm(pod);
            LOG.info("enrolled pod {} (cgroup {}, netns {}, ips {}): inbound plaintext on {}", pod.id(), pod.cgroup(),
                    pod.netns(), pod.ips(), listeners.stream().map(l -> l.address).toList());
        } catch (IOException | RuntimeException e) {
            listeners.forEach(InPodListener::close);
            LOG.error("cannot enroll pod {}: {} (it is retried when its pod file changes)", pod.id(), e.getMessage());
        }
    }

    /**
     * Writes {@code <uid>.enrolled} (the pod's netns path) once the pod is captured and its in-pod
     * listeners bound: what the CNI plugin ({@link CniPlugin}) waits for before the pod may start.
     */
    private void confirm(PodRef pod) {
        try {
            PodFile.writeAtomically(settings.podsDir(), pod.id() + PodFile.ENROLLED, String.valueOf(pod.netns())
                    .getBytes(StandardCharsets.UTF_8));
        } catch (IOException e) {
            LOG.error("cannot confirm pod {}'s enrollment in {}: {}", pod.id(), settings.podsDir(), e.getMessage());
        }
    }

    private void remove(String uid) {
        try {
            Files.deleteIfExists(PodFile.confirmation(settings.podsDir(), uid));
        } catch (IOException e) {
            LOG.warn("cannot remove pod {}'s enrollment confirmation: {}", uid, e.getMessage());
        }
        removed.accept(uid);
        Enrolled e = pods.remove(uid);
        if (e != null) {
            for (InetAddress ip : e.pod().ips()) {
                try {
                    capture.setInboundListener(ip, -1);
                } catch (BpfException ex) {
                    LOG.debug("clearing the inbound listener of {}: {}", ip, ex.getMessage());
                }
            }
            e.listeners().forEach(InPodListener::close);
        }
        try {
            boolean was = capture.remove(uid);
            LOG.info("removed pod {} from capture{}", uid, was ? "" : " (it was not enrolled)");
        } catch (BpfException ex) {
            LOG.error("cannot remove pod {} from capture: {}", uid, ex.getMessage());
        }
    }

    /**
     * Sends the pods' port-53 traffic to {@code 127.0.0.1:port} in each pod, where the agent's DNS
     * listeners are (0: off). {@link #close} turns it off again, so that while no agent runs the
     * pods ask their own resolver rather than a closed port.
     */
    public void redirectDns(int port) throws IOException {
        try {
            capture.redirectDns(port);
            dnsRedirected = port != 0;
        } catch (BpfException e) {
            throw new IOException("cannot send the pods' DNS to port " + port + ": " + e.getMessage(), e);
        }
    }

    /** The last flow events as a JSON array, for the admin API's {@code /flows}. */
    public String flowEventsJson() {
        return flows.jsonArray();
    }

    /** The ids of the pods capture has enrolled. */
    public Set<String> enrolled() {
        return capture.enrolled();
    }

    /**
     * Stops following pods and closes the in-pod listeners (a drain's first step); the maps stay
     * open for the connections still carried ({@link #passOwnConnection}, original destinations)
     * until {@link #close}. {@code handedOver}: a new agent took over and pointed the pods' DNS
     * redirect (pinned, not this run's) at its own listeners, so it stays as it is.
     */
    public synchronized void stopAccepting(boolean handedOver) {
        if (closed) {
            return;
        }
        closed = true;
        if (dnsRedirected && !handedOver) {
            try {
                redirectDns(0);
            } catch (IOException e) {
                LOG.warn("{}: pods' DNS stays sent to the agent's closed port until it runs again", e.getMessage());
            }
        }
        try {
            watcher.close();
        } catch (IOException e) {
            LOG.debug("closing the pods watcher: {}", e.toString());
        }
        if (thread != null) {
            Threads.awaitEnd(thread, Duration.ofSeconds(5));
        }
        if (subscription != null) {
            try {
                subscription.close();
            } catch (Exception e) {
                LOG.debug("closing the flow subscription: {}", e.toString());
            }
        }
        pods.values().forEach(p -> p.listeners().forEach(InPodListener::close));
        pods.clear();
    }

    /** {@link #stopAccepting}, then releases this run's handles; the pinned programs stay attached. */
    @Override
    public synchronized void close() {
        stopAccepting(false);
        capture.close();
    }
}
