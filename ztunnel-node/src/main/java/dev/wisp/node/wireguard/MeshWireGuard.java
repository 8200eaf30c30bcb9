package dev.wisp.node.wireguard;

import static java.util.Objects.requireNonNull;

import dev.wisp.base.IpText;
import dev.wisp.api.workload.v1.Node;
import dev.wisp.api.workload.v1.WireGuardRegistration;
import dev.wisp.node.admin.AdminServer;
import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.PeerStatus;
import dev.wisp.wireguard.Prefix;
import dev.wisp.wireguard.WireGuard;
import dev.wisp.wireguard.WireGuardDevice;
import dev.wisp.wireguard.netlink.KernelWireGuard;
import dev.wisp.wireguard.uapi.UapiServer;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import java.io.IOException;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.Locale;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import java.util.function.ToDoubleFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The node's WireGuard in the mesh: the Java device over TUN (its UAPI socket, so {@code wg show}
 * works on it), or kernel WireGuard over netlink where the module exists ({@link DevicePath}, which
 * falls back to the Java device when the kernel cannot be driven); the node's key pair, the peers
 * (installed just in time from the registry the {@code Node} resources carry, removed when idle:
 * {@link JustInTimePeers}; on kernel WireGuard, which has no upcall, every registered node), the
 * routes that send other nodes' pod CIDRs through it, and its metrics.
 *
 * <p>Order: {@link #startInBackground} loads or creates the key (so the registration is known at
 * once), then, on the {@code wisp-wireguard-start} thread, installs the policy rules and, in strict
 * mode, the unreachable routes, creates the device, brings it up and serves UAPI; from then on
 * {@link #sync} follows the Node resources. {@link #close} removes the device (its routes go with the
 * interface) and, in strict mode, leaves the unreachable routes so that nothing crosses in clear
 * while the agent is away.
 *
 * <p>Threads: {@link #sync} and {@link #close} are serialised on this object (the index's change
 * listener through {@link #syncLater}, and the runtime's close); peers are installed on the device's
 * handshake and TUN threads; one daemon thread, {@code wisp-wireguard}, runs the requested syncs and
 * removes idle peers every second (stopped by {@link #close}); metrics are read on scrape threads
 * from the thread-safe device.
 */
public final class MeshWireGuard implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(MeshWireGuard.class);
    /** WireGuard's overhead over IPv4: outer IP 20, UDP 8, header 16, tag 16. */
    static final int OVERHEAD_IPV4 = 60;
    /** Over IPv6: outer IP 40. */
    static final int OVERHEAD_IPV6 = 80;
    /** A peer's idle time when the control plane sets none ({@code MeshConfig} says why 180 s). */
    static final Duration DEFAULT_PEER_IDLE = Duration.ofSeconds(180);
    /** How often idle peers are looked for: a peer goes at most this long after its idle time. */
    static final Duration REAP_EVERY = Duration.ofSeconds(1);

    /**
     * How the agent runs its device.
     *
     * @param iface interface name (at most 15 characters)
     * @param stateDir where the private key is kept (0600)
     * @param listenPort the device's UDP port
     * @param address this node's address: the endpoint it publishes and the underlay whose MTU counts
     * @param podCidrs this node's pod CIDRs, published to the registry
     * @param clusterCidrs CIDRs that hold every node's pods (strict mode drops what is not routed)
     * @param strict fail closed: traffic for other nodes' pods is dropped, never sent in clear, when
     *            there is no peer or no device
     * @param table the first of the two routing tables used ({@code table} and {@code table + 1})
     * @param uapiDir where the UAPI socket goes
     */
    public record Settings(String iface, Path stateDir, int listenPort, InetAddress address, List<Prefix> podCidrs,
            List<Prefix> clusterCidrs, boolean strict, int table, Path uapiDir) {
        public static final int DEFAULT_PORT = 51820;
        public static final int DEFAULT_TABLE = 51820;

        public Settings {
            requireNonNull(iface, "iface");
            requireNonNull(stateDir, "stateDir");
            requireNonNull(address, "address");
            podCidrs = List.copyOf(requireNonNull(podCidrs, "podCidrs"));
            clusterCidrs = List.copyOf(requireNonNull(clusterCidrs, "clusterCidrs"));
            requireNonNull(uapiDir, "uapiDir");
            if (!iface.matches("[A-Za-z0-9_.-]{1,15}")) {
                throw new IllegalArgumentException("WireGuard interface name '" + iface + "' must be 1-15 letters, "
                        + "digits, '_', '.', '-'");
            }
            if (listenPort < 1 || listenPort > 65535) {
                throw new IllegalArgumentException("WireGuard port " + listenPort + " is outside 1-65535");
            }
            if (table < 1 || table > 0x7ffffffe) {
                throw new IllegalArgumentException("routing table " + table + " is not usable");
            }
        }
    }

    private final Settings settings;
    private final String nodeName;
    private final Plumbing plumbing;
    private final WireGuardDevice device;
    private final MeterRegistry registry;
    /** Kernel WireGuard (no upcall: every registered node is a peer, none reaped) or the Java device. */
    private final boolean kernel;
    private final KeyRotation rotation;
    private final JustInTimePeers peers;
    /** Each installed peer's meters; written on the device's threads (installs) and the reaper. */
    private final Map<Key, List<Meter>> peerMeters = new ConcurrentHashMap<>();
    /** One daemon thread: syncs requested by {@link #syncLater}, and the idle reaper. */
    private final ScheduledExecutorService worker;
    private final AtomicBoolean syncPending = new AtomicBoolean();
    /** Guarded by this. */
    private final Set<String> loggedSkips = new HashSet<>();
    private boolean hboneRules;
    private boolean closed;
    /** From this node's own Node resource: the key rotation period (zero: on demand only). */
    private volatile Duration rotationPeriod = Duration.ZERO;

    /**
     * What {@link #start} sets up on the host, removed together, in reverse order: the device, its UAPI
     * socket (null while the device is still being configured) and the rules and routes.
     */
    private record Plumbing(WireGuardDevice device, UapiServer uapi, Routes routes) {
        /** Removes it all; with {@code strict} the unreachable routes stay (fail closed). */
        void remove(boolean strict) {
            if (uapi != null) {
                uapi.close();
            }
            device.close();
            routes.close(strict);
        }
    }

    private MeshWireGuard(Settings settings, String nodeName, Plumbing plumbing, MeterRegistry registry, Key key,
            boolean kernel) throws IOException {
        this.settings = settings;
        this.kernel = kernel;
        this.nodeName = nodeName;
        this.plumbing = plumbing;
        this.device = plumbing.device();
        this.registry = registry;
        this.rotation = new KeyRotation(device, settings.stateDir(), key, NodeKey.written(settings.stateDir()),
                InstantSource.system());
        this.peers = new JustInTimePeers(device, DEFAULT_PEER_IDLE, System::nanoTime, new JustInTimePeers.Listener() {
            @Override
            public void installed(PeerPlan.PeerSpec p, JustInTimePeers.Direction direction) {
                LOG.info("WireGuard peer {} ({}) installed {}, at {}, allowed {}", p.node(), p.publicKey().toBase64(),
                        switch (direction) {
                            case INBOUND -> "just in time (its handshake initiation)";
                            case OUTBOUND -> "just in time (a packet to it)";
                            case REGISTERED -> "as registered (kernel WireGuard: no just-in-time peers)";
                        }, p.endpoint(), p.allowedIps());
                peerMetrics(p.publicKey(), p.node());
            }

            @Override
            public void rekeyed(Key old, PeerPlan.PeerSpec p) {
                LOG.info("WireGuard peer {} has a new key {}: sessions kept", p.node(), p.publicKey().toBase64());
                dropPeerMetrics(old);
                peerMetrics(p.publicKey(), p.node());
            }

            @Override
            public void removed(PeerPlan.PeerSpec p, String why) {
                LOG.info("WireGuard peer {} removed: {}", p.node(), why);
                dropPeerMetrics(p.publicKey());
            }
        });
        this.worker = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "wisp-wireguard");
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * Loads or creates the node's key now (what the node publishes is known from here on) and starts
     * the device for {@code nodeName} on a thread of its own, so that the agent's other parts start
     * meanwhile: the device's first start (TUN, the {@code ip(8)} runs, loading the WireGuard and
     * Bouncy Castle classes) is seconds on a loaded machine and HBONE does not need it. {@code hbonePort}
     * is where HBONE is dialled (for the rules that send it through WireGuard when the mesh asks for
     * that); metrics go to {@code registry}.
     *
     * @throws IOException when the key cannot be loaded or created (the start is then not begun)
     */
    public static Starting startInBackground(Settings settings, String nodeName, int hbonePort,
            MeterRegistry registry) throws IOException {
        requireNonNull(settings, "settings");
        requireNonNull(nodeName, "nodeName");
        requireNonNull(registry, "registry");
        Key key = NodeKey.loadOrCreate(settings.stateDir());
        Starting s = new Starting(registration(settings, key.publicKey()));
        Thread.ofPlatform().name("wisp-wireguard-start").daemon().start(() -> {
            try {
                s.done.complete(start(settings, key, nodeName, hbonePort, registry));
            } catch (IOException | RuntimeException e) {
                s.done.completeExceptionally(e);
            }
        });
        return s;
    }

    /**
     * A device being started by {@link #startInBackground}: what the node publishes, at once, and
     * the device once {@link #await} returns it. Whoever holds it either takes the device from
     * {@link #await} (and closes it) or calls {@link #abandon}.
     */
    public static final class Starting {
        private final WireGuardRegistration registration;
        private final CompletableFuture<MeshWireGuard> done = new CompletableFuture<>();

        private Starting(WireGuardRegistration registration) {
            this.registration = registration;
        }

        /** The registration: known before the device is up, then the device's (a rotated key). */
        public WireGuardRegistration registration() {
            MeshWireGuard wg = done.isDone() && !done.isCompletedExceptionally() ? done.join() : null;
            return wg == null ? registration : wg.registration();
        }

        /**
         * Waits for the device.
         *
         * @throws IOException the start's failure (what it had set up is already undone)
         */
        public MeshWireGuard await() throws IOException {
            try {
                return done.join();
            } catch (CompletionException e) {
                if (e.getCause() instanceof IOException io) {
                    throw io;
                }
                throw new IOException("cannot start the WireGuard device: " + e.getCause(), e.getCause());
            }
        }

        /** For an agent that failed to start: waits for the device and closes it if it came up. */
        public void abandon() {
            MeshWireGuard wg = done.handle((started, e) -> started).join();
            if (wg != null) {
                wg.close();
            }
        }
    }

    private static MeshWireGuard start(Settings settings, Key key, String nodeName, int hbonePort,
            MeterRegistry registry) throws IOException {
        Routes routes = new Routes(settings.iface(), settings.table(), hbonePort, settings.address());
        routes.installRules(false);
        if (settings.strict()) {
            routes.apply(PeerPlan.of(nodeName, List.of(), settings.podCidrs(), settings.clusterCidrs(), true));
        }
        int mtu = mtu(settings.address());
        DevicePath.Opened opened = DevicePath.open(DevicePath.select(DevicePath.SYS_MODULE), settings.iface(), mtu,
                KernelWireGuard::open, (iface, m) -> WireGuard.builder(iface).mtu(m).start());
        boolean kernel = opened.kind() == DevicePath.Kind.KERNEL_NETLINK;
        WireGuardDevice device = opened.device();
        UapiServer uapi = null;
        try {
            device.setPrivateKey(key);
            device.setListenPort(settings.listenPort());
            // wg(8) speaks netlink to kernel WireGuard itself; the Java device needs its UAPI socket.
            uapi = kernel ? null : UapiServer.start(device, settings.uapiDir());
            Routes.link(settings.iface());
        } catch (IOException | RuntimeException e) {
            new Plumbing(device, uapi, routes).remove(settings.strict());
            throw new IOException("cannot start the WireGuard device " + settings.iface() + ": " + e.getMessage(), e);
        }
        Plumbing plumbing = new Plumbing(device, uapi, routes);
        MeshWireGuard wg;
        try {
            wg = new MeshWireGuard(settings, nodeName, plumbing, registry, key, kernel);
        } catch (IOException e) {
            plumbing.remove(settings.strict());
            throw e;
        }
        device.setUnknownPeerHandler(wg.peers);
        wg.worker.scheduleWithFixedDelay(wg::everySecond, REAP_EVERY.toMillis(), REAP_EVERY.toMillis(),
                TimeUnit.MILLISECONDS);
        wg.deviceMetrics();
        LOG.info("WireGuard device {} up: public key {}, {}:{}, MTU {}, {} mode", settings.iface(), key.publicKey()
                .toBase64(), settings.address().getHostAddress(), device.listenPort(), mtu,
                settings.strict()
                        ? "strict"
                        : "permissive");
        return wg;
    }

    /** The underlay's MTU (of the interface holding {@code address}) less WireGuard's overhead. */
    static int mtu(InetAddress address) {
        int underlay = 1500;
        try {
            NetworkInterface nic = NetworkInterface.getByInetAddress(address);
            if (nic != null && nic.getMTU() > 0) {
                underlay = nic.getMTU();
            }
        } catch (SocketException e) {
            LOG.debug("MTU of the interface of {}: {}", address, e.toString());
        }
        return underlay - (address instanceof Inet6Address ? OVERHEAD_IPV6 : OVERHEAD_IPV4);
    }

    /** What this node publishes to the control plane's key registry. */
    public WireGuardRegistration registration() {
        return registration(settings, rotation.published());
    }

    private static WireGuardRegistration registration(Settings settings, Key publicKey) {
        WireGuardRegistration.Builder b = WireGuardRegistration.newBuilder()
                .setPublicKey(publicKey.toBase64())
                .setEndpoint(IpText.hostPort(settings.address(), settings.listenPort()));
        settings.podCidrs().forEach(c -> b.addPodCidrs(c.toString()));
        return b.build();
    }

    /** The device (tests and {@code /config_dump}). */
    public WireGuardDevice device() {
        return device;
    }

    /**
     * Runs {@link #sync} with what {@code nodes} returns then, on this object's thread: the caller
     * (the index's change listener, on the xDS thread) does not wait for {@code ip(8)}. Requests made
     * while one waits are served by that one.
     */
    public void syncLater(Supplier<Collection<Node>> nodes) {
        requireNonNull(nodes, "nodes");
        if (syncPending.compareAndSet(false, true)) {
            try {
                worker.execute(() -> {
                    syncPending.set(false);
                    sync(nodes.get());
                });
            } catch (RejectedExecutionException e) {
                syncPending.set(false);
                LOG.debug("WireGuard {} closed; sync not run", settings.iface());
            }
        }
    }

    /**
     * Brings peers and routes in line with {@code nodes} (every Node resource the agent holds).
     * Failures are logged, and the next change tries again.
     */
    public synchronized void sync(Collection<Node> nodes) {
        if (closed) {
            return;
        }
        PeerPlan plan = PeerPlan.of(nodeName, nodes, settings.podCidrs(), settings.clusterCidrs(), settings
                .strict());
        for (String skip : plan.skipped()) {
            if (loggedSkips.add(skip)) {
                LOG.info("WireGuard: {}", skip);
            }
        }
        Set<String> keyless = new HashSet<>();
        for (Node n : nodes) {
            if (!n.getName().equals(nodeName) && n.getWireguardPublicKey().isEmpty()) {
                keyless.add(n.getName());
            }
        }
        peers.update(plan.peers(), keyless, idleTime(nodes));
        if (kernel) {
            peers.installAll();
        }
        for (Node n : nodes) {
            if (n.getName().equals(nodeName)) {
                rotationPeriod = Duration.ofSeconds(n.getWireguardKeyRotationSeconds());
                rotation.ownKeyIs(n.getWireguardPublicKey());
            }
        }
        try {
            boolean hbone = !plan.hboneRouted().isEmpty() || !plan.hboneUnreachable().isEmpty();
            if (hbone != hboneRules) {
                plumbing.routes().installRules(hbone);
                hboneRules = hbone;
            }
            plumbing.routes().apply(plan);
        } catch (IOException e) {
            LOG.warn("WireGuard routes of {} not updated: {}", settings.iface(), e.getMessage());
        }
    }

    /** The idle time the control plane set on this node's own Node resource, or the default. */
    private Duration idleTime(Collection<Node> nodes) {
        for (Node n : nodes) {
            if (n.getName().equals(nodeName) && n.getWireguardPeerIdleSeconds() > 0) {
                return Duration.ofSeconds(n.getWireguardPeerIdleSeconds());
            }
        }
        return DEFAULT_PEER_IDLE;
    }

    /** On the {@code wisp-wireguard} thread: idle peers go, and the key rotation moves on. */
    private void everySecond() {
        try {
            if (!kernel) {
                peers.reap();
            }
        } catch (RuntimeException e) {
            LOG.warn("WireGuard idle peers of {} not reaped: {}", settings.iface(), e.toString());
        }
        try {
            rotation.tick(rotationPeriod);
        } catch (RuntimeException e) {
            LOG.warn("WireGuard key rotation of {} not advanced: {}", settings.iface(), e.toString());
        }
    }

    /**
     * How a new key reaches the control plane at once ({@code publish} sends the registration on the
     * open discovery stream); until this is set, rotations are refused.
     */
    public void publishKeysWith(Runnable publish) {
        rotation.publishWith(publish);
    }

    /**
     * Starts a key rotation ({@code wisp wireguard rotate}); one already running goes on.
     *
     * @return the rotation's status as JSON
     * @throws IOException when the new key cannot be stored
     * @throws IllegalStateException when there is no control plane to publish it
     */
    public String rotateKey() throws IOException {
        return json(rotation.rotate("on demand"));
    }

    /** The key rotation as the admin API serves it ({@code GET /wireguard}, {@code POST /wireguard/rotate}). */
    public AdminServer.WireGuardKeys adminKeys() {
        return new AdminServer.WireGuardKeys() {
            @Override
            public String status() {
                return keyStatus();
            }

            @Override
            public String rotate() throws IOException {
                return rotateKey();
            }
        };
    }

    /** The key rotation's status as JSON (public keys only). */
    public String keyStatus() {
        return json(rotation.status());
    }

    private static String json(KeyRotation.Status s) {
        return "{\"phase\":\"" + s.phase().name().toLowerCase(Locale.ROOT) + "\",\"public_key\":\"" + s.publicKey()
                .toBase64() + "\",\"published_key\":\"" + s.published().toBase64() + "\",\"secondary_key\":"
                + (s.secondary() == null ? "null" : "\"" + s.secondary().toBase64() + "\"") + ",\"since\":\"" + s
                        .since()
                + "\",\"rotations\":" + s.rotations() + ",\"peers_without_new_key\":" + s
                        .waitingFor().size()
                + "}\n";
    }

    private void dropPeerMetrics(Key key) {
        List<Meter> meters = peerMeters.remove(key);
        if (meters != null) {
            meters.forEach(registry::remove);
        }
    }

    private void deviceMetrics() {
        FunctionCounter.builder("wisp_wireguard_handshakes", device, d -> d.stats().handshakesCompleted())
                .description("WireGuard handshakes completed by this node's device (all peers)").register(registry);
        FunctionCounter.builder("wisp_wireguard_dropped_packets", device, d -> d.stats().invalidPackets())
                .description("packets the device dropped as malformed, unauthenticated, replayed or for no peer")
                .register(registry);
        FunctionCounter.builder("wisp_wireguard_lane_dropped_packets", device, d -> d.stats().droppedPackets())
                .description("packets the device dropped because a peer's queue was full or closed (overload)")
                .register(registry);
        Gauge.builder("wisp_wireguard_peers", device, d -> d.stats().peers())
                .description("peers installed on this node's device now").register(registry);
        for (JustInTimePeers.Direction d : List.of(JustInTimePeers.Direction.INBOUND,
                JustInTimePeers.Direction.OUTBOUND)) {
            FunctionCounter.builder("wisp_wireguard_jit_installs", peers, p -> p.installs(d))
                    .tag("direction", d.name().toLowerCase(Locale.ROOT))
                    .description("peers installed just in time: inbound = the other node's handshake initiation, "
                            + "outbound = a packet from this node")
                    .register(registry);
        }
        FunctionCounter.builder("wisp_wireguard_jit_reaps", peers, JustInTimePeers::reaps)
                .description("peers removed after moving no bytes for the idle time").register(registry);
    }

    private void peerMetrics(Key key, String node) {
        List<Meter> meters = new ArrayList<>();
        meters.add(FunctionCounter.builder("wisp_wireguard_peer_sent_bytes", this, peer(key, s -> s.txBytes()))
                .tag("peer", node).description("bytes sent to this peer, WireGuard framing included")
                .register(registry));
        meters.add(FunctionCounter.builder("wisp_wireguard_peer_received_bytes", this, peer(key, s -> s.rxBytes()))
                .tag("peer", node).description("bytes received from this peer, WireGuard framing included")
                .register(registry));
        meters.add(Gauge.builder("wisp_wireguard_peer_last_handshake_age_seconds", this, peer(key,
                s -> s.lastHandshake() == null
                        ? Double.NaN
                        : Duration.between(s.lastHandshake(), Instant.now()).toMillis() / 1000.0))
                .tag("peer", node).description("seconds since the last handshake with this peer (NaN: none yet)")
                .register(registry));
        peerMeters.put(key, meters);
    }

    private static ToDoubleFunction<MeshWireGuard> peer(Key key, ToDoubleFunction<PeerStatus> f) {
        return wg -> {
            for (PeerStatus s : wg.device.peers()) {
                if (s.publicKey().equals(key)) {
                    return f.applyAsDouble(s);
                }
            }
            return Double.NaN;
        };
    }

    /** Removes the device; in strict mode the unreachable routes stay (fail closed). */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        worker.shutdownNow();
        plumbing.remove(settings.strict());
        LOG.info("WireGuard device {} removed{}", settings.iface(), settings.strict()
                ? "; other nodes' pod CIDRs stay unreachable until the agent is back"
                : "");
    }

    /** The public key the device uses now (never the private one). */
    public Key publicKey() {
        return device.publicKey();
    }
}
