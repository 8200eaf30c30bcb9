package dev.wisp.controlplane;

import dev.wisp.spiffe.MeshIdentities;
import dev.wisp.base.Closing;
import dev.wisp.base.Threads;
import static java.util.Objects.requireNonNull;

import dev.wisp.controlplane.ca.CaOptions;
import dev.wisp.controlplane.ca.CertificateService;
import dev.wisp.controlplane.ca.RootRotation;
import dev.wisp.controlplane.config.ConfigError;
import dev.wisp.controlplane.config.ConfigSource;
import dev.wisp.controlplane.config.DirectoryConfigSource;
import dev.wisp.controlplane.config.LoadResult;
import dev.wisp.controlplane.envoy.EnvoyDiscovery;
import dev.wisp.controlplane.envoy.EnvoyTranslator;
import dev.wisp.controlplane.flows.FlowRelay;
import dev.wisp.controlplane.model.AuthorizationPolicy;
import dev.wisp.controlplane.model.MeshModel;
import dev.wisp.controlplane.model.Cidr;
import dev.wisp.controlplane.model.NodeDef;
import dev.wisp.controlplane.model.Pod;
import dev.wisp.controlplane.model.ServiceDef;
import dev.wisp.controlplane.model.WireGuardEntry;
import dev.wisp.controlplane.wireguard.KeyRegistry;
import dev.wisp.api.workload.v1.WireGuardRegistration;
import dev.wisp.controlplane.translate.Translation;
import dev.wisp.controlplane.translate.Translator;
import dev.wisp.controlplane.xds.LocalNodeCredentials;
import dev.wisp.controlplane.xds.NodeAuthInterceptor;
import dev.wisp.controlplane.xds.NodeAuthenticator;
import dev.wisp.controlplane.xds.NodeDirectory;
import dev.wisp.controlplane.xds.Snapshot;
import dev.wisp.controlplane.xds.WorkloadDiscoveryServer;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.tls.SpiffeTls;
import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.netty.NettyServerBuilder;
import io.micrometer.core.instrument.Counter;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslProvider;
import java.time.Duration;
import javax.net.ssl.SSLException;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Instant;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The control plane process: configuration source → model → translation → workload discovery
 * (and certificate signing, and Envoy xDS for waypoints) over gRPC, plus the localhost admin API with {@code /metrics}.
 *
 * <p>Threads: the source's watcher thread (or an admin request thread, for apply/delete) delivers
 * each reading; {@link #onLoad} runs under the source's lock, so readings are handled one at a
 * time in order. gRPC runs on Netty event loops and its default executor; pushes fan out on
 * virtual threads.
 */
public final class ControlPlane implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ControlPlane.class);

    /**
     * Where to read configuration, keep state, and listen. Port 0 picks a free port (tests).
     *
     * @param adminToken when present, the admin API may listen beyond loopback and answers a request
     *     from another address only with {@code Authorization: Bearer <token>}; when empty it listens
     *     on loopback only and refuses any other caller
     */
    public record Options(Path configDir, Path stateDir, InetSocketAddress xdsAddress, InetSocketAddress adminAddress,
            Optional<String> adminToken, CaOptions ca) {
        public Options {
            requireNonNull(ca, "ca");
            requireNonNull(configDir, "configDir");
            requireNonNull(stateDir, "stateDir");
            requireNonNull(xdsAddress, "xdsAddress");
            requireNonNull(adminAddress, "adminAddress");
            requireNonNull(adminToken, "adminToken");
            if (!adminAddress.getAddress().isLoopbackAddress() && adminToken.isEmpty()) {
                throw new IllegalArgumentException("the admin API (" + adminAddress
                        + ") changes the mesh's configuration and shows its flows; bind it to 127.0.0.1 or ::1, "
                        + "or give it a bearer token (--admin-token-file) to listen beyond localhost");
            }
        }

        public Options(Path configDir, Path stateDir, InetSocketAddress xdsAddress, InetSocketAddress adminAddress,
                Optional<String> adminToken) {
            this(configDir, stateDir, xdsAddress, adminAddress, adminToken, CaOptions.DEFAULTS);
        }

        /** These options with the CA's ({@code --cacerts}, {@code --workload-cert-ttl}). */
        public Options withCa(CaOptions ca) {
            return new Options(configDir, stateDir, xdsAddress, adminAddress, adminToken, ca);
        }

        public Options(Path configDir, Path stateDir, InetSocketAddress xdsAddress, InetSocketAddress adminAddress) {
            this(configDir, stateDir, xdsAddress, adminAddress, Optional.empty());
        }
    }

    /** The status of the configuration: the last reading's errors and the live generation. */
    public record ConfigStatus(long generation, Instant appliedAt, List<ConfigError> errors, Instant refusedAt) {}

    /** The port of the agents' flows listener that the relay reads (their {@code --flows-port}). */
    public static final int FLOWS_PORT = 4244;
    /**
     * The largest message an agent may send: its requests are ACKs, subscriptions, a WireGuard key
     * and CSRs of about 1 KiB; anything near this is not an agent's (responses are not limited).
     */
    static final int MAX_AGENT_MESSAGE = 256 << 10;
    /** The caller name under which the control plane signs for itself: never a valid node name. */
    private static final String SELF = " control-plane";
    private final Options options;
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final ConfigSource source;
    /** Local mode's node credentials; null when another authenticator checks agents (Kubernetes). */
    private final LocalNodeCredentials credentials;
    private final NodeAuthenticator agents;
    private final WorkloadDiscoveryServer discovery;
    /** Envoy xDS (LDS/RDS/CDS/EDS over ADS) for the waypoint and proxyless gRPC clients. */
    private final EnvoyDiscovery envoy = new EnvoyDiscovery();
    private final Counter configErrors;
    private final Counter reloads;
    /** Written under {@link #publishLock} (readings and registrations), read by anyone. */
    private volatile MeshModel model = MeshModel.empty();
    private volatile Translation translation;
    private volatile ConfigStatus status = new ConfigStatus(0, null, List.of(), null);
    /** "node namespace serviceAccount" of every pod of the live model: the CA's node authorization. */
    private volatile Set<String> hosted = Set.of();
    /** Created at the first valid reading (the trust domain comes from MeshConfig). */
    private volatile CertificateAuthority ca;
    /** Guarded by {@code this}: the certificate of the agents' port. */
    private X509Svid serverSvid;
    private Server grpc;
    private CertificateService certificates;
    private final RootRotation rotation;
    private AdminServer admin;
    private final FlowRelay relay;
    /**
     * Serialises translating and publishing between configuration readings and WireGuard
     * registrations (which arrive on gRPC threads); guards the fields below.
     */
    private final Object publishLock = new Object();
    private KeyRegistry keys;
    /** Registrations that came before the first valid reading, checked at that reading. */
    private final Map<String, KeyRegistry.Claim> pendingClaims = new LinkedHashMap<>();
    /** The last refusal logged per node: a repeated claim (every reconnect) is counted, not logged again. */
    private final Map<String, String> loggedRefusals = new HashMap<>();
    /** The read-only /metrics and readiness listener, when asked for ({@link #serveMetrics}). */
    private volatile AdminServer metrics;

    private ControlPlane(Options options, ConfigSource source, NodeAuthenticator agents) {
        this.options = options;
        this.rotation = new RootRotation(() -> ca, options.ca().pluggedIn(), this::bundleChanged);
        this.source = source;
        this.keys = KeyRegistry.empty(source.podCidrsFromNodesOnly());
        this.credentials = agents == null ? new LocalNodeCredentials(options.stateDir()) : null;
        this.agents = agents == null ? credentials : agents;
        this.discovery = new WorkloadDiscoveryServer(registry);
        this.configErrors = Counter.builder("wisp_config_errors")
                .description("configuration errors found in readings that were refused")
                .register(registry);
        this.reloads = Counter.builder("wisp_config_reloads").description("configuration readings").register(registry);
        registry.gauge("wisp_config_valid", this, cp -> cp.status.errors().isEmpty() ? 1 : 0);
        // Beside each agent's wisp_xds_config_generation: an agent behind this number has not applied the latest.
        registry.gauge("wisp_config_generation", this, cp -> cp.status.generation());
        this.relay = new FlowRelay(
                new FlowRelay.Sources(() -> model.all(NodeDef.class), FLOWS_PORT, this::serverSvid, () -> {
                    CertificateAuthority authority = ca;
                    return authority == null ? null : authority.bundle();
                }), registry);
        registry.gauge("wisp_wireguard_registered_nodes", this, cp -> cp.wireguardKeys().size());
        // Every reason at zero from the start, so "nothing refused" is a series a dashboard can show.
        for (KeyRegistry.Reason reason : KeyRegistry.Reason.values()) {
            refusals(reason);
        }
        discovery.onRegistration(this::registered);
    }

    /** Starts listening, reads the configuration directory, and keeps watching it. */
    public static ControlPlane start(Options options) {
        return start(options, new DirectoryConfigSource(requireNonNull(options, "options").configDir()));
    }

    /**
     * Starts listening, reads {@code source} (the Kubernetes API, for instance), and keeps following
     * it; the control plane closes the source.
     */
    public static ControlPlane start(Options options, ConfigSource source) {
        return start(options, source, null);
    }

    /**
     * As above, with agents authenticated by {@code agents} (on Kubernetes: their service-account
     * tokens, {@code AgentTokens}) instead of local mode's per-node token files, which are then
     * not issued.
     */
    public static ControlPlane start(Options options, ConfigSource source, NodeAuthenticator agents) {
        ControlPlane cp = new ControlPlane(requireNonNull(options, "options"), requireNonNull(source, "source"),
                agents);
        try {
            cp.startServers();
            cp.source.start(cp::onLoad);
        } catch (RuntimeException e) {
            cp.close();
            throw e;
        }
        return cp;
    }

    private void startServers() {
        NodeAuthInterceptor nodeAuth = new NodeAuthInterceptor(agents, new NodeDirectory() {
            @Override
            public boolean loaded() {
                return status.generation() > 0;
            }

            @Override
            public Optional<List<InetAddress>> addresses(String node) {
                return model.node(node).map(NodeDef::addresses);
            }

            @Override
            public boolean inPodCidrs(String node, InetAddress ip) {
                return model.node(node).stream().flatMap(n -> n.podCidrs().stream())
                        .anyMatch(c -> Cidr.parse(c).contains(ip));
            }
        }, discovery.refusals());
        certificates = new CertificateService(() -> ca, registry, discovery.refusals());
        NettyServerBuilder b = NettyServerBuilder
                .forAddress(options.xdsAddress(), new AgentHandshakes(registry).credentials(serverTls()))
                .maxInboundMessageSize(MAX_AGENT_MESSAGE)
                .addStreamTracerFactory(new RefusedMessages(discovery.refusals()))
                .permitKeepAliveTime(5, TimeUnit.SECONDS)
                .permitKeepAliveWithoutCalls(true)
                .addService(agentService(discovery.bindService(), nodeAuth))
                .addService(agentService(certificates.bindService(), nodeAuth))
                .addService(agentService(envoy.aggregatedService().bindService(), nodeAuth));
        try {
            grpc = b.build().start();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot listen for agents on " + options.xdsAddress() + ": " + e.getMessage()
                    + " (is another control plane running?)", e);
        }
        admin = AdminServer.start(options.adminAddress(), options.adminToken(), this);
        log.info("control plane: agents on {}, admin and /metrics on http://{}", grpc.getListenSockets(),
                admin.address());
    }

    /** An agents' service: credential checked first, unparsable requests refused as counted refusals. */
    private ServerServiceDefinition agentService(ServerServiceDefinition service, NodeAuthInterceptor nodeAuth) {
        return ServerInterceptors.intercept(UnparsableMessages.refusing(service, discovery.refusals()), nodeAuth);
    }

    /**
     * TLS for the agents' port: the control plane presents an SVID of its own
     * ({@link MeshIdentities#controlPlane}) from the mesh CA, which agents verify
     * against the bundle they were given at bootstrap; agents present no certificate (they may have
     * none yet) and authenticate with their bearer credential inside the channel.
     */
    private SslContext serverTls() {
        try {
            return SpiffeTls.forServerAuthenticationOnly(this::serverSvid, SslProvider.JDK);
        } catch (SSLException e) {
            throw new IllegalStateException("cannot build the TLS context of the agents' port: " + e.getMessage(), e);
        }
    }

    /**
     * The SVID for the agents' port, issued on first use and again past half of its life; also the
     * flow relay's client certificate.
     */
    private synchronized X509Svid serverSvid() {
        CertificateAuthority authority = ca;
        if (authority == null) {
            log.warn(
                    "an agent connected before the first valid configuration: no CA yet, so no certificate to present");
            return null;
        }
        X509Svid s = serverSvid;
        Instant now = Instant.now();
        if (s == null || now.isAfter(s.notBefore().plus(Duration.between(s.notBefore(), s.notAfter()).dividedBy(2)))) {
            s = authority.issue(MeshIdentities.controlPlane(authority.trustDomain()), null, SELF);
            serverSvid = s;
        }
        return s;
    }

    /**
     * After a rotation step: the agents' port presents a certificate of the signing root from its next
     * handshake on (so that retiring the old root never leaves it presenting one), and every watcher
     * gets the new bundle.
     */
    private void bundleChanged() {
        synchronized (this) {
            serverSvid = null;
        }
        certificates.bundleChanged();
    }

    /** {@code wisp ca rotate}: the CA's rotation steps on this control plane. */
    public RootRotation rotation() {
        return rotation;
    }

    /** The certificate service, with its trust bundle watchers. */
    public CertificateService certificates() {
        return certificates;
    }

    /**
     * The CA's node authorization: a node may obtain the identities of service accounts of pods the
     * model places on it, and its own agent identity ({@code wisp-system/wisp-node.<node>}); the
     * control plane itself ({@link #SELF}, not a valid node name) only its own.
     */
    private boolean authorized(String node, String namespace, String serviceAccount) {
        if (SELF.equals(node)) {
            return MeshIdentities.NAMESPACE.equals(namespace) && MeshIdentities.CONTROL_PLANE_SA.equals(serviceAccount);
        }
        if (MeshIdentities.NAMESPACE.equals(namespace)) {
            // Reserved for the mesh's own identities: a pod declared there must not lend a node
            // another node's agent identity (or the control plane's).
            return MeshIdentities.nodeAgentAccount(node).equals(serviceAccount);
        }
        return hosted.contains(node + " " + namespace + " " + serviceAccount);
    }

    private void onLoad(LoadResult r) {
        reloads.increment();
        if (!r.valid()) {
            configErrors.increment(r.errors().size());
            for (ConfigError e : r.errors()) {
                log.warn("configuration refused, the previous one stays live: {}", e);
            }
            synchronized (publishLock) {
                ConfigStatus s = status;
                status = new ConfigStatus(s.generation(), s.appliedAt(), r.errors(), Instant.now());
            }
            return;
        }
        MeshModel m = r.model();
        if (credentials != null) {
            credentials.issue(m.all(NodeDef.class).stream().map(n -> n.ref().name()).toList());
        }
        Set<String> h = new HashSet<>();
        for (Pod p : m.all(Pod.class)) {
            h.add(p.nodeName() + " " + p.ref().namespace() + " " + p.serviceAccount());
        }
        hosted = Set.copyOf(h);
        startCa(m.mesh().trustDomain());
        synchronized (publishLock) {
            model = m;
            KeyRegistry.Revalidated again = keys.revalidate(m.all(NodeDef.class));
            keys = again.registry();
            again.dropped().forEach(d -> refused(d.node(), d.reason(), d.message()));
            pendingClaims.forEach(this::checkClaim);
            pendingClaims.clear();
            discovery.disconnectAllBut(
                    m.all(NodeDef.class).stream().map(n -> n.ref().name())
                            .collect(java.util.stream.Collectors.toSet()));
            Translation t = publish();
            // Envoy resources change only with the model (not with WireGuard registrations):
            // versioned by the generation of this reading.
            envoy.publish(status.generation(), EnvoyTranslator.translate(m));
            t.warnings().forEach((ref, ws) -> ws.forEach(w -> log.warn("{}: {}", ref, w)));
            log.info("configuration generation {} live: {} pods, {} services, {} nodes, {} authorization policies",
                    status.generation(), m.all(Pod.class).size(), m.all(ServiceDef.class).size(),
                    m.all(NodeDef.class).size(),
                    m.all(AuthorizationPolicy.class).size());
        }
    }

    /** Translates the model with the registry's entries and publishes it as the next generation. */
    private Translation publish() {
        assert Thread.holdsLock(publishLock);
        Translation t = Translator.translate(model, translation, keys.entries());
        long generation = status.generation() + 1;
        translation = t;
        status = new ConfigStatus(generation, Instant.now(), List.of(), null);
        discovery.publish(new Snapshot(generation, t, System.nanoTime()));
        return t;
    }

    /** A WireGuard registration from the agent whose credential authenticated {@code node}. */
    private void registered(String node, WireGuardRegistration r) {
        KeyRegistry.Claim claim = new KeyRegistry.Claim(r.getPublicKey(), r.getEndpoint(), r.getPodCidrsList());
        synchronized (publishLock) {
            if (translation == null) {
                pendingClaims.put(node, claim);
                return;
            }
            if (checkClaim(node, claim)) {
                publish();
            }
        }
    }

    /** Registers {@code claim} or refuses it; true when the registry changed. */
    private boolean checkClaim(String node, KeyRegistry.Claim claim) {
        assert Thread.holdsLock(publishLock);
        switch (keys.register(node, claim, model.all(NodeDef.class))) {
            case KeyRegistry.Outcome.Accepted a -> {
                loggedRefusals.remove(node);
                if (a.changed()) {
                    keys = a.registry();
                    log.info("WireGuard key of node {} registered: {} at {}, pod CIDRs {}", node, a.entry().publicKey(),
                            a.entry().endpointText(), a.entry().podCidrs());
                    source.recordWireGuardKey(node, a.entry().publicKey(), a.entry().endpointText());
                }
                return a.changed();
            }
            case KeyRegistry.Outcome.Refused f -> {
                refused(node, f.reason(), f.message());
                return false;
            }
        }
    }

    private Counter refusals(KeyRegistry.Reason reason) {
        return Counter.builder("wisp_wireguard_registrations_refused")
                .description(
                        "WireGuard registrations refused (a key, endpoint or pod CIDR of another node, or malformed)")
                .tag("reason", reason.label()).register(registry);
    }

    private void refused(String node, KeyRegistry.Reason reason, String message) {
        refusals(reason).increment();
        if (!message.equals(loggedRefusals.put(node, message))) {
            log.warn("WireGuard registration refused, the node keeps its previous entry (if any): {}", message);
        }
    }

    /** The key registry's accepted entries, by node. */
    public Map<String, WireGuardEntry> wireguardKeys() {
        synchronized (publishLock) {
            return keys.entries();
        }
    }

    private void startCa(String trustDomain) {
        CertificateAuthority existing = ca;
        if (existing != null) {
            if (!existing.trustDomain().equals(trustDomain)) {
                log.error("MeshConfig names trust domain {} but the CA in {} signs for {}; restart with another state "
                        + "directory to change trust domains", trustDomain, caDir(), existing.trustDomain());
            }
            return;
        }
        try {
            ca = options.ca().open(caDir(), trustDomain, this::authorized);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create or load the CA in " + caDir() + ": " + e.getMessage(), e);
        }
    }

    /** Where the CA keeps its root (key 0600). */
    public Path caDir() {
        return options.stateDir().resolve("ca");
    }

    public MeshModel model() {
        return model;
    }

    /** The live translation, or null before the first valid reading. */
    public Translation translation() {
        return translation;
    }

    public ConfigStatus configStatus() {
        return status;
    }

    public ConfigSource source() {
        return source;
    }

    public WorkloadDiscoveryServer discovery() {
        return discovery;
    }

    /** The Envoy xDS (ADS) service and its live snapshot. */
    public EnvoyDiscovery envoy() {
        return envoy;
    }

    /** Local mode's node credentials (not with another authenticator). */
    public LocalNodeCredentials credentials() {
        if (credentials == null) {
            throw new IllegalStateException("this control plane authenticates agents otherwise: no node token files");
        }
        return credentials;
    }

    /** The flow relay behind the admin API's {@code /api/v1/flows}. */
    public FlowRelay relay() {
        return relay;
    }

    public PrometheusMeterRegistry registry() {
        return registry;
    }

    /** The port agents connect to. */
    public int xdsPort() {
        return ((InetSocketAddress) grpc.getListenSockets().getFirst()).getPort();
    }

    public InetSocketAddress adminAddress() {
        return admin.address();
    }

    /**
     * Also serves {@code /metrics} and {@code /healthz/ready} (read-only) on {@code address}, which
     * may be any address: what a Prometheus and the kubelet's readiness probe reach in a cluster.
     * Returns the bound address.
     */
    public InetSocketAddress serveMetrics(InetSocketAddress address) {
        requireNonNull(address, "address");
        AdminServer m = AdminServer.startMetrics(address, this);
        metrics = m;
        log.info("control plane: /metrics and /healthz/ready on http://{}", m.address());
        return m.address();
    }

    /** Node names of the live model. */
    public List<String> nodeNames() {
        return model.all(NodeDef.class).stream().map(NodeDef::ref).map(r -> r.name()).toList();
    }

    @Override
    public void close() {
        Closing.inOrder(source, relay, admin, metrics);
        discovery.shutdown();
        if (grpc != null) {
            grpc.shutdownNow();
            Threads.awaitTermination(grpc::awaitTermination, Duration.ofSeconds(5));
        }
        registry.close();
    }
}
