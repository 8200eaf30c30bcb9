package dev.wisp.node;

import static java.util.Objects.requireNonNull;

import dev.wisp.base.Closing;
import dev.wisp.linux.Cgroups;
import dev.wisp.node.workloadapi.WorkloadApi;
import dev.wisp.spiffe.MeshIdentities;
import java.nio.file.Path;

import dev.wisp.api.workload.v1.HboneProtocol;
import dev.wisp.api.workload.v1.Workload;
import dev.wisp.node.admin.AdminServer;
import dev.wisp.node.capture.NodeCapture;
import dev.wisp.node.capture.PodDiscovery;
import dev.wisp.node.capture.PodFollower;
import dev.wisp.node.capture.TransparentUpstream;
import dev.wisp.node.controlplane.ControlPlaneClient;
import dev.wisp.node.dns.DnsProxy;
import dev.wisp.node.dns.PodDns;
import dev.wisp.node.identity.CertificateMetrics;
import dev.wisp.node.identity.HeldCertificates;
import dev.wisp.node.identity.Identities;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.proxy.HboneClient;
import dev.wisp.node.proxy.HbonePool;
import dev.wisp.node.proxy.HboneServer;
import dev.wisp.node.proxy.QuicHboneServer;
import dev.wisp.node.proxy.InboundPlaintext;
import dev.wisp.node.proxy.OriginalDestinationResolver;
import dev.wisp.node.proxy.Outbound;
import dev.wisp.node.proxy.ProxyContext;
import dev.wisp.node.proxy.Socks5;
import dev.wisp.node.proxy.Transport;
import dev.wisp.node.proxy.WorkloadLimits;
import dev.wisp.node.state.InvalidResourceException;
import dev.wisp.api.workload.v1.Node;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.node.state.StateFile;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.wireguard.MeshWireGuard;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.node.telemetry.ProcessMetrics;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.node.tls.HboneTls;
import dev.wisp.node.xds.XdsMetrics;
import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import io.micrometer.core.instrument.Counter;
import io.netty.channel.group.ChannelGroupFuture;
import java.io.IOException;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One node agent, built from {@link NodeSettings} and owning every component of it: the state
 * index and where it is fed from (a state file, or the control-plane client's workload discovery),
 * the identities (a local CA, or the control plane's), the node's WireGuard device when asked for
 * (its key loaded first and published when the control plane is first reached; the device itself
 * comes up on a thread of its own meanwhile), eBPF capture when asked for, the event loops,
 * the HBONE server and pool, the outbound, inbound and SOCKS5 listeners, the DNS proxy when asked
 * for, telemetry and the admin,
 * metrics and readiness endpoints. {@code wisp node} and the in-JVM test agents are built here, so
 * tests run the production wiring.
 *
 * <p>Order. {@link #build} starts them in dependency order (state and identities, capture, loops,
 * listeners, admin, then capture's pods, then it waits for the WireGuard device) and is ready once
 * every listener is bound and the device is up; a failure
 * closes what was started, newest first. {@link #drain} then {@link #close} stop them in one
 * order:
 * <ol>
 * <li>readiness answers 503;
 * <li>stop accepting: the outbound, inbound, SOCKS5 and DNS listeners close, capture stops following
 * pods and closes its in-pod listeners (its pinned programs stay attached, so pods stay captured
 * while the agent restarts);
 * <li>HBONE: the listener closes and every connection gets GOAWAY — HTTP/2's and HTTP/3's (QUIC)
 * alike; open streams finish, up to the drain timeout ({@link #close} without {@link #drain} does
 * not wait);
 * <li>the pool closes its client connections;
 * <li>the control-plane client ends workload discovery and its channel (the last state stays);
 * <li>the identities stop renewing;
 * <li>the WireGuard device is removed (in strict mode its unreachable routes stay);
 * <li>the admin, metrics and readiness listeners close;
 * <li>the event loops end.
 * </ol>
 * A drain that hands over to a new agent ({@link #handOver}) closes the admin, metrics and readiness
 * listeners first: the new agent is ready once it holds their ports.
 *
 * <p>Threads: {@link #drain} and {@link #close} may be called from any thread (the launcher's
 * shutdown hook); they are serialised on this object. {@link #ready} is read by readiness requests
 * on their own threads.
 */
public final class NodeRuntime implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(NodeRuntime.class);

    private enum Phase {
        SERVING, DRAINED, CLOSED
    }

    private final NodeSettings settings;
    /** How long HBONE connections may take after GOAWAY: past the drain deadline, so that the drain counts first. */
    private final Duration grace;
    private final WorkloadIndex index = WorkloadIndex.create();
    private final Telemetry telemetry = new Telemetry();
    /** What {@link #build} has started, newest first: closed in that order if building fails. */
    private final Deque<AutoCloseable> started = new ArrayDeque<>();
    /** Read by {@link #addresses} on any thread, also while a drain holds this object's lock. */
    private final Map<String, InetSocketAddress> bound = java.util.Collections.synchronizedMap(new LinkedHashMap<>());
    private ControlPlaneClient controlPlane;
    private Identities identities;
    private NodeCapture capture;
    /** Finds running pods no pod file names; with capture and {@code --discover-pods} only. */
    private PodDiscovery discovery;
    private TransparentUpstream transparent;
    /** The pods' SPIFFE Workload API; with capture and a Workload API directory only. */
    private WorkloadApi workloadApi;
    private DnsProxy dns;
    /** The DNS proxy's listeners in the captured pods; with capture and DNS only. */
    private PodDns podDns;
    private Transport transport;
    private ProxyContext ctx;
    private HboneServer hbone;
    private HbonePool pool;
    /** HBONE over HTTP/3 on UDP, the HBONE port's number; null when that UDP port could not be bound. */
    private QuicHboneServer quicServer;
    private HboneClient hboneClient;
    private Outbound outbound;
    private InboundPlaintext inbound;
    private Socks5 socks5;
    private AdminServer admin;
    private MeshWireGuard.Starting wireguardStarting;
    private MeshWireGuard wireguard;
    /** Set once every listener is bound, cleared when draining; read by the readiness endpoint. */
    private volatile boolean ready;
    /** Capture's flow events for {@code /flows}; set at build when capture runs (tests set their own). */
    private volatile Supplier<String> captureEvents;
    /** Guarded by {@code this}. */
    private Phase phase = Phase.SERVING;
    /** This agent's side of a take-over, once a new agent asks ({@link #handOver}). */
    private final Takeover.HandOver handingOver = new Takeover.HandOver();
    /** Connections a drain reset at its deadline, since start ({@code wisp_drain_closed_at_deadline_total}). */
    private Counter closedAtDeadline;

    private NodeRuntime(NodeSettings settings) {
        this.settings = settings;
        this.grace = DrainDeadline.grace(settings.drainTimeout());
    }

    /**
     * Builds and starts a node agent; every listener is bound when this returns.
     *
     * @throws IOException with an operator's message when a part cannot start (state file, CA,
     *             control-plane credentials, capture, a port in use); what was started is closed
     */
    public static NodeRuntime build(NodeSettings settings) throws IOException {
        return build(settings, Optional.empty());
    }

    /** {@link #build}, with the captured listeners' original destinations given (in-JVM tests). */
    static NodeRuntime build(NodeSettings settings, Optional<OriginalDestinationResolver> resolver)
            throws IOException {
        NodeRuntime r = new NodeRuntime(requireNonNull(settings, "settings"));
        try {
            r.start(resolver);
        } catch (IOException e) {
            r.abandon();
            throw e;
        } catch (RuntimeException e) {
            r.abandon();
            throw new IOException("node agent " + settings.nodeName() + " could not start: " + e.getMessage(), e);
        }
        return r;
    }

    private void start(Optional<OriginalDestinationResolver> resolverOverride) throws IOException {
        if (settings.wireguard().isPresent()) {
            // Before the source: the control-plane client publishes the node's key when it connects.
            // The device comes up meanwhile (awaited before ready): HBONE does not need it, and a
            // restarted agent's first calls should not wait for it.
            wireguardStarting = MeshWireGuard.startInBackground(settings.wireguard().get(), settings.nodeName(),
                    settings.ports().hboneOrDefault(), telemetry.registry());
            started.push(wireguardStarting::abandon);
        }
        openSource();
        NodeSettings.Ports ports = settings.ports();
        if (settings.capture().isPresent()) {
            capture = openCapture(settings.capture().get());
            captureEvents = capture::flowEventsJson;
        }
        OriginalDestinationResolver resolver = resolverOverride
                .orElse(capture != null ? capture.resolver() : OriginalDestinationResolver.none());
        transport = Transport.create(settings.workerThreads(), settings.transport());
        started.push(transport);
        if (capture != null) {
            // After the loops: capture's in-pod listeners run on them, so they close first.
            started.push(capture);
        }
        ctx = new ProxyContext(settings.nodeName(), index, new HboneTls(identities), telemetry, transport,
                Stream.of(ports.outbound(), ports.inboundPlaintext(), ports.hbone()).filter(p -> p > 0)
                        .collect(Collectors.toSet()),
                ports.hboneOrDefault(), settings.connectTimeout());
        telemetry.gauge("wisp_inbound_connections_open", "inbound connections relayed to workloads, open (each is "
                + "decided again when policy changes)", ctx.connections()::openConnections);
        closedAtDeadline = telemetry.counter("wisp_drain_closed_at_deadline", "connections still open at a drain's "
                + "deadline, reset then (a drain waits for every carried connection up to --drain-timeout)");
        hbone = new HboneServer(ctx, grace);
        started.push(hbone);
        pool = new HbonePool(ctx, settings.streamsPerConnection(), settings.idleTimeout());
        started.push(pool);
        hboneClient = new HboneClient(ctx, settings.hboneProtocol(), pool, settings.streamsPerConnection(),
                settings.idleTimeout());
        started.push(hboneClient);
        meshHboneProtocol();
        index.onChange(this::meshHboneProtocol);
        outbound = new Outbound(ctx, hboneClient, resolver, new WorkloadLimits(settings.workloadLimits()));
        hbone.shareFairly(outbound.limits().fair());
        started.push(outbound);
        inbound = new InboundPlaintext(ctx, resolver);
        started.push(inbound);
        socks5 = new Socks5(ctx, outbound, settings.socks5Workload());
        started.push(socks5);
        prefetchIdentities();
        index.onChange(this::prefetchIdentities);
        InetAddress any = settings.bindAddress();
        InetAddress loopback = InetAddress.getLoopbackAddress();
        if (!settings.takeover()) {
            Takeover.refuseWhenAgentRuns(ports.admin());
        }
        Supplier<QuicHboneServer> quic = () -> new QuicHboneServer(ctx, grace);
        quicServer = HboneListeners.bind(hbone, quic, new InetSocketAddress(any, ports.hbone()), bound);
        if (quicServer != null) {
            started.push(quicServer);
        }
        bound.put("outbound", outbound.bind(new InetSocketAddress(any, ports.outbound())));
        bound.put("inbound", inbound.bind(new InetSocketAddress(any, ports.inboundPlaintext())));
        bound.put("socks5", socks5.bind(new InetSocketAddress(loopback, ports.socks5())));
        if (settings.dns().isPresent()) {
            NodeSettings.Dns d = settings.dns().get();
            dns = DnsProxy.create(index, d.upstream());
            started.push(dns);
            // Loopback only, for the node's processes: pods are served inside their own namespaces
            // (capture), and nothing outside the node may use the agent as a resolver.
            bound.put("dns", dns.listen(new InetSocketAddress(loopback, d.port()), DnsProxy.LOOPBACK_CLIENTS)
                    .udpAddress());
        }
        // The footprint (resident memory, fds, CPU, GC pauses) on /metrics beside the L4 series.
        started.push(ProcessMetrics.bind(telemetry.registry()));
        // The control plane link and the certificates, read from their owners' state at each scrape.
        telemetry.beforeScrape(CertificateMetrics.bind(identities.certificates(), telemetry.registry(), Clock
                .systemUTC()));
        if (controlPlane != null) {
            XdsMetrics.bind(controlPlane.xds(), telemetry.registry());
        }
        if (!settings.takeover()) {
            startAdmin();
        }
        if (capture != null) {
            Optional<Path> apiDir = settings.capture().get().workloadApiDir();
            if (apiDir.isPresent()) {
                workloadApi = WorkloadApi.create(apiDir.get(), settings.nodeName(), index, identities.certificates(),
                        identities::bundle, Cgroups.v2Root(), telemetry.counter("wisp_workload_api_refused",
                                "connections to a pod's Workload API socket refused: the caller is not a "
                                        + "process of that pod"));
                started.push(workloadApi);
                if (controlPlane != null) {
                    controlPlane.onBundleChange(workloadApi::bundleChanged);
                }
            }
            if (dns != null) {
                podDns = new PodDns(dns, NodeSettings.Dns.DEFAULT_PORT);
                started.push(podDns);
            }
            if (transport.kind() == Transport.Kind.NIO) {
                // Apps see their clients' addresses (the socket is a JDK channel: NIO only).
                transparent = new TransparentUpstream(telemetry.registry(), capture::passOwnConnection);
                started.push(transparent);
                transport.upstreamSource(transparent);
            } else {
                LOG.info("with the {} transport, captured pods' applications see the agent's address, not their "
                        + "clients' (transparent upstream sockets need the NIO transport)", transport.kind().label());
            }
            // Each enrolled pod gets its Workload API socket, DNS listener and reply path, for those the agent runs.
            List<PodFollower> followers = Stream.<PodFollower>of(transparent, workloadApi, podDns)
                    .filter(Objects::nonNull)
                    .toList();
            capture.start(r -> new InboundPlaintext(ctx, r), pod -> followers.forEach(f -> f.podAdded(pod)),
                    uid -> followers.forEach(f -> f.podRemoved(uid)));
            if (podDns != null) {
                capture.redirectDns(podDns.port());
            }
            Optional<NodeSettings.Discovery> d = settings.capture().get().discovery();
            if (d.isPresent()) {
                discovery = new PodDiscovery(new PodDiscovery.Settings(settings.capture().get().podsDir(), d.get()
                        .cgroupRoot(), d.get().netnsDirs()));
                started.push(discovery);
                index.onChange(discovery::changed);
                discovery.start(() -> PodDiscovery.candidates(index.snapshot(), settings.nodeName()));
            }
        }
        if (settings.takeover()) {
            // Everything of ours listens: now the old agent may stop (its queued connections move here).
            Takeover.takeOver(ports.admin(), this::startAdmin, quicServer != null
                    ? null
                    : () -> HboneListeners
                            .bindQuicLater(quic, new InetSocketAddress(any, bound.get("hbone").getPort()), grace.plus(
                                    Takeover.ADMIN_RELEASE), this::quicBound));
        }
        if (wireguardStarting != null) {
            MeshWireGuard wg = wireguardStarting.await();
            // Off the xDS thread: ip(8) runs must not hold up the index's other listeners (identity
            // prefetch) or the ACK.
            index.onChange(() -> wg.syncLater(this::wireGuardNodes));
            if (controlPlane != null) {
                ControlPlaneClient cp = controlPlane;
                wg.publishKeysWith(() -> cp.xds().republishWireGuard());
            }
            wg.sync(wireGuardNodes());
            admin.serveWireGuard(wg.adminKeys());
            wireguard = wg;
        }
        ready = true;
        LOG.info("node agent for {} ready (transport: {}): {}", settings.nodeName(), transport.kind().label(), bound);
    }

    /** The admin, metrics and readiness listeners, and the relay's flows listener with a control plane. */
    private void startAdmin() throws IOException {
        InetAddress any = settings.bindAddress();
        NodeSettings.Ports ports = settings.ports();
        AdminServer a = AdminServer.start(new AdminServer.Agent(settings.nodeName(), index::snapshot, this::figures,
                telemetry::scrape, () -> ready, telemetry.flows(), this::currentCaptureEvents), settings.logLevels(),
                new InetSocketAddress(InetAddress.getLoopbackAddress(), ports.admin()),
                new InetSocketAddress(any, ports.metrics()), new InetSocketAddress(any, ports.readiness()));
        try {
            if (settings.flowsPort().isPresent() && settings.source() instanceof NodeSettings.Source.ControlPlane) {
                bound.put("flows", a.serveFlowsToRelay(AdminServer.relayTls(identities, settings.nodeName()),
                        new InetSocketAddress(any, settings.flowsPort().getAsInt()), MeshIdentities.controlPlane(
                                identities.trustDomain())));
            }
        } catch (IOException | RuntimeException e) {
            a.close();
            throw e;
        }
        a.serveHandover(this::handOver);
        a.serveFairShare(outbound.limits().fair());
        admin = a;
        started.push(admin);
        bound.put("admin", admin.adminAddress());
        bound.put("metrics", admin.metricsAddress());
        bound.put("readiness", admin.readinessAddress());
    }

    /** The state and the identities: from a state file and a local CA, or from the control plane. */
    private void openSource() throws IOException {
        switch (settings.source()) {
            case NodeSettings.Source.Standalone s -> {
                CertificateAuthority ca;
                try {
                    ca = CertificateAuthority.createOrLoad(s.caDir(), CaSettings.of(settings.trustDomain(),
                            NodeAuthorizer.unrestricted()));
                } catch (IOException | RuntimeException e) {
                    throw new IOException("cannot open the CA in " + s.caDir() + ": " + e.getMessage(), e);
                }
                try {
                    StateFile.load(s.stateFile(), index);
                } catch (IOException | InvalidResourceException e) {
                    throw new IOException("cannot load the state file " + s.stateFile() + ": " + e.getMessage(), e);
                }
                identities = Identities.local(ca, settings.nodeName());
            }
            case NodeSettings.Source.ControlPlane at -> {
                MeshWireGuard.Starting wg = wireguardStarting;
                controlPlane = ControlPlaneClient.connect(at, settings.nodeName(), settings.trustDomain(), index,
                        () -> wg == null ? Optional.empty() : Optional.of(wg.registration()));
                started.push(controlPlane);
                identities = Identities.create(settings.trustDomain(), controlPlane.signer(), controlPlane.bundle());
            }
        }
        started.push(identities);
    }

    private NodeCapture openCapture(NodeSettings.Capture c) throws IOException {
        return NodeCapture.open(NodeCapture.Settings.forNode(c.podsDir(), c.pinRoot(), c.address(), settings
                .bindAddress() instanceof Inet6Address, settings.ports().outbound(), settings.ports()
                        .inboundPlaintext(),
                NodeSettings.CAPTURE_FLOW_CAPACITY));
    }

    /** A failed build: closes what was started, newest first. */
    private void abandon() {
        while (!started.isEmpty()) {
            AutoCloseable c = started.pop();
            try {
                c.close();
            } catch (Exception e) {
                LOG.warn("closing {} after a failed start: {}", c.getClass().getSimpleName(), e.toString());
            }
        }
        phase = Phase.CLOSED;
    }

    /** MeshConfig's {@code spec.hbone.protocol}, as the control plane set it on this node's Node resource. */
    private void meshHboneProtocol() {
        hboneClient.meshProtocol(index.snapshot().node(settings.nodeName()).map(Node::getHboneProtocol).orElse(
                HboneProtocol.HBONE_PROTOCOL_UNSET));
    }

    /**
     * Asks for the SVIDs this node will present (its own, and its workloads') whenever the state
     * changes, so that the first connection does not wait for the CA.
     */
    private void prefetchIdentities() {
        identities.prefetch(IdentityProvider.nodeId(identities.trustDomain(), settings.nodeName()));
        for (Workload w : index.snapshot().workloads()) {
            if (w.getNode().equals(settings.nodeName()) && !w.getServiceAccount().isEmpty()) {
                identities.prefetch(IdentityProvider.workloadId(w));
            }
        }
    }

    /** Every Node resource the agent holds: what WireGuard's peers and routes follow. */
    private List<Node> wireGuardNodes() {
        return index.snapshot().resources().getOrDefault(StateUpdates.NODE, Map.of()).values().stream()
                .map(Resource::getNode).toList();
    }

    /** The node's WireGuard device in the mesh, when it runs one. */
    public Optional<MeshWireGuard> wireguard() {
        return Optional.ofNullable(wireguard);
    }

    /** The state: fed by the state file or workload discovery (in-JVM tests apply resources to it). */
    public WorkloadIndex index() {
        return index;
    }

    /** Where each listener is bound: hbone, outbound, inbound, socks5, admin, metrics, readiness, dns (UDP and TCP). */
    public Map<String, InetSocketAddress> addresses() {
        return Map.copyOf(bound);
    }

    /** Metrics, the access log and the flow log of every listener. */
    public Telemetry telemetry() {
        return telemetry;
    }

    /** HBONE client TLS connections open now. */
    public int poolConnections() {
        return pool.connections();
    }

    private Map<String, Object> figures() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("node", settings.nodeName());
        m.put("hbone_pool_connections", pool.connections());
        m.put("hbone_pool_connections_opened", pool.connectionsOpened());
        m.put("hbone_server_connections", hbone.connections());
        m.put("hbone_quic_server_connections", quicServer == null ? 0 : quicServer.connections());
        TrustBundle bundle = identities.bundle();
        m.put("trust_bundle", HeldCertificates.roots(bundle));
        m.put("certificates", HeldCertificates.certificates(identities.certificates().identities(), identities
                .certificates()::current, bundle));
        return m;
    }

    private Optional<String> currentCaptureEvents() {
        Supplier<String> events = captureEvents;
        return events == null ? Optional.empty() : Optional.of(events.get());
    }

    /** Replaces capture's events in {@code /flows} (tests without eBPF). */
    void captureEvents(Supplier<String> jsonArray) {
        this.captureEvents = requireNonNull(jsonArray, "jsonArray");
    }

    /**
     * Steps 1-4 of the order above: stops accepting, sends GOAWAY, and lets every carried connection
     * (outbound, and inbound over HBONE or plaintext) finish up to the drain timeout; those still open
     * then are reset and counted ({@code wisp_drain_closed_at_deadline_total} and a log line).
     */
    public synchronized void drain() {
        if (phase != Phase.SERVING) {
            return;
        }
        long deadline = System.nanoTime() + settings.drainTimeout().toNanos();
        LOG.info("node agent for {} draining (up to {}){}", settings.nodeName(), settings.drainTimeout(),
                handingOver.asked() ? ": handing over to a new agent" : "");
        if (handingOver.asked()) {
            // First: the new agent waits for these ports, and is ready only once it holds them; stopping
            // accepting can take seconds (capture's threads), all taken from its drain period otherwise.
            ready = false;
            Closing.inOrder(admin);
        }
        stopAccepting();
        // GOAWAY on both framings now; their own deadline is after ours, so that ours counts what is left.
        ChannelGroupFuture quicDrained = quicServer == null ? null : quicServer.drain(grace);
        ChannelGroupFuture hboneDrained = hbone.goAway();
        DrainDeadline.Result r = DrainDeadline.await(deadline, outbound::openConnections,
                ctx.connections()::openConnections, outbound::resetAll, ctx.connections()::resetAll);
        closedAtDeadline.increment(r.reset());
        LOG.info("node agent for {} drained in {} ms: {} connections closed at the deadline (outbound {}, inbound {})",
                settings.nodeName(), r.millis(), r.reset(), r.outbound(), r.inbound());
        hboneDrained.awaitUninterruptibly(DrainDeadline.MARGIN.toMillis() + 1000);
        if (quicDrained != null) {
            quicDrained.awaitUninterruptibly(DrainDeadline.MARGIN.toMillis() + 1000);
        }
        Closing.inOrder(hboneClient, quicServer, pool);
        phase = Phase.DRAINED;
    }

    /**
     * The running agent's side of {@code wisp node --takeover}, asked on its admin port
     * ({@link Takeover.HandOver}): drains as on SIGTERM, giving up its admin ports, and closes without
     * touching capture's pinned settings, which the new agent now owns.
     *
     * @throws IllegalStateException when this agent is draining or stopped already
     */
    public void handOver() { // not under this object's lock: a drain holds it for its whole wait
        handingOver.start(ready, () -> {
            drain();
            close();
        });
    }

    /** Completes once this agent has handed over to a new one and stopped ({@link #handOver}). */
    public CompletionStage<Void> handedOver() {
        return handingOver.done();
    }

    /** Takes {@code s}, bound at {@code at} after a take-over, unless this agent stopped meanwhile. */
    private synchronized boolean quicBound(QuicHboneServer s, InetSocketAddress at) {
        if (phase != Phase.SERVING || handingOver.asked()) {
            return false;
        }
        quicServer = s;
        bound.put("hbone_quic", at);
        return true;
    }

    private void stopAccepting() {
        ready = false;
        // Capture before the DNS listeners: it stops sending the pods' DNS to them (unless a new agent took over).
        AutoCloseable pods = capture == null ? null : () -> capture.stopAccepting(handingOver.asked());
        Closing.inOrder(outbound, inbound, socks5, discovery, pods, podDns, dns, workloadApi);
    }

    /** The whole order above; without a {@link #drain} first, HBONE streams are cut rather than awaited. */
    @Override
    public synchronized void close() {
        if (phase == Phase.CLOSED) {
            return;
        }
        try {
            if (phase == Phase.SERVING) {
                stopAccepting();
                Closing.inOrder(hbone, hboneClient, quicServer, pool);
            }
            // Capture's maps last: streams still carried during the drain use them (client addresses).
            // The pods' reply paths stay when handing over: the new agent's connections answer over them.
            Closing.inOrder(handingOver.asked() ? null : transparent, capture, controlPlane, identities, wireguard,
                    admin);
        } finally {
            transport.close();
            phase = Phase.CLOSED;
            LOG.info("node agent for {} stopped", settings.nodeName());
        }
    }
}
