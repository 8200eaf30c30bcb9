package dev.wisp.node;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.util.RawValue;
import dev.wisp.api.workload.v1.Workload;
import dev.wisp.node.admin.AdminServer;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.proxy.HbonePool;
import dev.wisp.node.proxy.HboneServer;
import dev.wisp.node.proxy.InboundPlaintext;
import dev.wisp.node.proxy.OriginalDestinationResolver;
import dev.wisp.node.proxy.Outbound;
import dev.wisp.node.proxy.ProxyContext;
import dev.wisp.node.proxy.Socks5;
import dev.wisp.node.proxy.Transport;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.node.telemetry.FlowLog;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.node.tls.HboneTls;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A running node agent: the HBONE server, the outbound, inbound-plaintext and SOCKS5 listeners,
 * the HBONE pool, and the admin/metrics/readiness endpoints, all over one {@link WorkloadIndex}.
 *
 * <p>Lifecycle: {@link #start} binds everything (ready once bound); {@link #drain} stops
 * accepting, turns readiness to 503, sends GOAWAY on HBONE connections and lets open streams finish
 * up to the drain timeout, then {@link #close} releases the event loops.
 */
public final class NodeAgent implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(NodeAgent.class);
    private final NodeConfig config;
    private final WorkloadIndex index;
    private final Telemetry telemetry = new Telemetry();
    private final Transport transport;
    private final HboneServer hbone;
    private final HbonePool pool;
    private final Outbound outbound;
    private final InboundPlaintext inbound;
    private final Socks5 socks5;
    private final AdminServer admin;
    /** Shared by every listener, including the in-pod ones capture creates ({@link #newInboundPlaintext}). */
    private final ProxyContext ctx;
    private final Map<String, InetSocketAddress> bound = new LinkedHashMap<>();
    /** Set once started, cleared when draining; read by the readiness endpoint. */
    private volatile boolean ready;
    /** Capture's flow events as a JSON array, when capture runs; set once by capture, read by /flows. */
    private volatile Supplier<String> captureEvents;

    private NodeAgent(NodeConfig config, WorkloadIndex index) {
        this.config = config;
        this.index = index;
        this.transport = Transport.create(config.workerThreads());
        ProxyContext ctx = this.ctx = new ProxyContext(config.nodeName(), index, new HboneTls(config.identities()),
                telemetry,
                transport,
                Stream.of(config.outboundPort(), config.inboundPlaintextPort(), config.hbonePort())
                        .filter(p -> p > 0).collect(Collectors.toSet()),
                config.hbonePort() == 0 ? 15008 : config.hbonePort(), config.connectTimeout());
        this.hbone = new HboneServer(ctx, config.drainTimeout());
        this.pool = new HbonePool(ctx, config.streamsPerConnection(), config.idleTimeout());
        this.outbound = new Outbound(ctx, pool, config.resolver());
        this.inbound = new InboundPlaintext(ctx, config.resolver());
        this.socks5 = new Socks5(ctx, outbound, config.socks5Workload());
        this.admin = new AdminServer(index::snapshot, this::figures, telemetry::scrape, () -> ready,
                config.logLevels());
    }

    /** Starts an agent over {@code index}; every listener is bound when this returns. */
    public static NodeAgent start(NodeConfig config, WorkloadIndex index) throws IOException {
        requireNonNull(config, "config");
        requireNonNull(index, "index");
        NodeAgent a = new NodeAgent(config, index);
        try {
            a.bindAll();
        } catch (RuntimeException | IOException e) {
            a.close();
            throw e instanceof IOException io
                    ? io
                    : new IOException("node agent could not bind its ports: "
                            + e.getMessage() + " (is another agent running on this node?)", e);
        }
        return a;
    }

    /**
     * Asks for the SVIDs this node will present (its own, and its workloads') whenever the state
     * changes, so that the first connection does not wait for the CA.
     */
    private void prefetchIdentities() {
        var ids = config.identities();
        ids.prefetch(IdentityProvider.nodeId(ids.trustDomain(), config.nodeName()));
        for (Workload w : index.snapshot().workloads()) {
            if (w.getNode().equals(config.nodeName()) && !w.getServiceAccount().isEmpty()) {
                ids.prefetch(IdentityProvider.workloadId(w));
            }
        }
    }

    private void bindAll() throws IOException {
        prefetchIdentities();
        index.onChange(this::prefetchIdentities);
        InetAddress any = config.bindAddress();
        InetAddress loopback = InetAddress.getLoopbackAddress();
        bound.put("hbone", hbone.bind(new InetSocketAddress(any, config.hbonePort())));
        bound.put("outbound", outbound.bind(new InetSocketAddress(any, config.outboundPort())));
        bound.put("inbound", inbound.bind(new InetSocketAddress(any, config.inboundPlaintextPort())));
        bound.put("socks5", socks5.bind(new InetSocketAddress(loopback, config.socks5Port())));
        bound.put("admin", admin.bindAdmin(new InetSocketAddress(loopback, config.adminPort())));
        admin.addJsonEndpoint("/flows", this::flowsJson);
        bound.put("metrics", admin.bindMetrics(new InetSocketAddress(any, config.metricsPort())));
        bound.put("readiness", admin.bindReadiness(new InetSocketAddress(any, config.readinessPort())));
        ready = true;
        LOG.info("node agent for {} ready (epoll: {}): {}", config.nodeName(), transport.nativeEpoll(), bound);
    }

    /**
     * A further plaintext inbound (15006) handler sharing this agent's state, event loops and
     * telemetry: eBPF capture binds one inside each enrolled pod's network namespace. The caller
     * binds and closes it.
     */
    public InboundPlaintext newInboundPlaintext(OriginalDestinationResolver resolver) {
        return new InboundPlaintext(ctx, requireNonNull(resolver, "resolver"));
    }

    /**
     * Adds capture's eBPF socket events to {@code /flows} (under {@code flows}, beside the proxy's
     * {@code connections}); {@code jsonArray} renders them as a JSON array.
     */
    public void captureEvents(Supplier<String> jsonArray) {
        this.captureEvents = requireNonNull(jsonArray, "jsonArray");
    }

    /**
     * {@code /flows}: {@code {"node", "last_seq", "connections": [FlowRecord...]}} plus capture's
     * {@code flows} when capture runs; {@code ?since=N} keeps the connections after record N.
     */
    private String flowsJson(Map<String, String> query) {
        long since = 0;
        String raw = query.get("since");
        if (raw != null) {
            try {
                since = Long.parseLong(raw);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("since: '" + raw + "' is not a number");
            }
        }
        FlowLog log = telemetry.flows();
        ObjectNode out = FlowLog.JSON.createObjectNode();
        out.put("node", config.nodeName());
        out.put("last_seq", log.last());
        out.set("connections", log.json(since));
        Supplier<String> events = captureEvents;
        if (events != null) {
            out.putRawValue("flows", new RawValue(events.get()));
        }
        try {
            return FlowLog.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(out) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot render /flows", e);
        }
    }

    /** Where each listener is bound: hbone, outbound, inbound, socks5, admin, metrics, readiness. */
    public Map<String, InetSocketAddress> addresses() {
        return Map.copyOf(bound);
    }

    public WorkloadIndex index() {
        return index;
    }

    public Telemetry telemetry() {
        return telemetry;
    }

    /** HBONE client TLS connections open now. */
    public int poolConnections() {
        return pool.connections();
    }

    private Map<String, Object> figures() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("node", config.nodeName());
        m.put("hbone_pool_connections", pool.connections());
        m.put("hbone_pool_connections_opened", pool.connectionsOpened());
        m.put("hbone_server_connections", hbone.connections());
        return m;
    }

    /** Stops accepting and lets open HBONE streams finish (GOAWAY), up to the drain timeout. */
    public void drain() {
        ready = false;
        LOG.info("node agent for {} draining (up to {})", config.nodeName(), config.drainTimeout());
        outbound.close();
        inbound.close();
        socks5.close();
        hbone.drain();
        pool.close();
    }

    @Override
    public void close() {
        ready = false;
        try {
            hbone.close();
            outbound.close();
            inbound.close();
            socks5.close();
            pool.close();
            admin.close();
        } finally {
            transport.close();
        }
    }
}
