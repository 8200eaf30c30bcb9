package dev.wisp.node.admin;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.util.RawValue;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.util.JsonFormat;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.base.admin.AdminHttp;
import dev.wisp.base.admin.AdminHttp.Access;
import dev.wisp.base.admin.AdminHttp.Response;
import dev.wisp.node.state.Snapshot;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.telemetry.FlowLog;
import dev.wisp.node.identity.IdentityException;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.identity.Identities;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.tls.SpiffeTls;
import io.netty.handler.ssl.SslProvider;
import javax.net.ssl.SSLException;
import io.netty.handler.ssl.SslContext;
import dev.wisp.node.proxy.FairShare;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * The agent's HTTP endpoints, each on its own listener as in ztunnel: admin on loopback only
 * ({@code /config_dump}: the state as JSON plus pool figures; {@code POST /logging?level=L[&logger=N]}:
 * change a log level; {@code /flows}: the last connections and capture's socket events; {@code /fair}
 * and {@code POST /fair/switch?on=1|0}: the workloads' fair share and its switch), Prometheus
 * {@code /metrics}, and {@code /healthz/ready} (200 once the agent is serving, 503 before and while
 * draining). Each listener is a {@link AdminHttp}.
 */
public final class AdminServer implements AutoCloseable {

    /** The node's WireGuard key rotation, once its device is up (see {@link #serveWireGuard}). */
    public interface WireGuardKeys {
        /** The rotation's status as JSON. */
        String status();

        /**
         * Starts a rotation; the status as JSON.
         *
         * @throws IllegalStateException when the agent cannot rotate (409)
         */
        String rotate() throws IOException;
    }

    /** Changes a logger's level; the launcher supplies it (the agent does not bind a logging backend). */
    @FunctionalInterface
    public interface LogLevels {
        /** @throws IllegalArgumentException when the level is not known, or not allowed for that logger (400) */
        void set(String logger, String level);
    }

    /**
     * What the endpoints read from the running agent; each supplier is called on the request's thread.
     *
     * @param figures further figures for {@code /config_dump} (name → number, text, or a list or map
     *        rendered as JSON), in order
     * @param scrape the Prometheus exposition
     * @param captureEvents capture's socket events as a JSON array, when capture runs
     */
    public record Agent(String nodeName, Supplier<Snapshot> snapshot, Supplier<Map<String, Object>> figures,
            Supplier<String> scrape, BooleanSupplier ready, FlowLog flows, Supplier<Optional<String>> captureEvents) {
        public Agent {
            requireNonNull(nodeName, "nodeName");
            requireNonNull(snapshot, "snapshot");
            requireNonNull(figures, "figures");
            requireNonNull(scrape, "scrape");
            requireNonNull(ready, "ready");
            requireNonNull(flows, "flows");
            requireNonNull(captureEvents, "captureEvents");
        }
    }

    private final Agent agent;
    private final LogLevels levels;
    private final List<AdminHttp> listeners = new ArrayList<>();
    /** Guarded by {@code this}: the relay's listener, when started. */
    private RelayFlowsServer relayFlows;
    /** The share {@code /fair} shows and switches; null until the agent serves it. */
    private volatile FairShare fair;
    /** What {@code POST /drain?handover=1} runs; null until the agent serves it. */
    private volatile Runnable handover;
    private volatile boolean closed;
    /** Set once the WireGuard device is up; null while it is not (or WireGuard is off). */
    private volatile WireGuardKeys wireguard;

    private AdminServer(Agent agent, LogLevels levels) {
        this.agent = agent;
        this.levels = levels;
    }

    /**
     * Binds the three listeners; {@code admin} must be a loopback address.
     *
     * @throws IOException naming the listener that could not bind
     */
    public static AdminServer start(Agent agent, LogLevels levels, InetSocketAddress admin,
            InetSocketAddress metrics, InetSocketAddress readiness) throws IOException {
        AdminServer s = new AdminServer(requireNonNull(agent, "agent"), requireNonNull(levels, "levels"));
        try {
            s.listeners.add(AdminHttp.start("admin", admin, Access.LOOPBACK_ONLY, AdminHttp.routes()
                    .get("/config_dump", r -> Response.json(200, s.configDump()))
                    .post("/logging", r -> s.logging(r.query()))
                    .get("/flows", r -> Response.json(200, s.flows(r.query())))
                    .get("/wireguard", r -> s.wireguard(false))
                    .post("/wireguard/rotate", r -> s.wireguard(true))
                    .post("/drain", r -> s.handOver(r.query()))
                    .get("/fair", r -> s.fair(null))
                    .post("/fair/switch", r -> s.fair(r.query().get("on")))));
            s.listeners.add(AdminHttp.start("metrics", metrics, Access.ANY, AdminHttp.routes()
                    .get("/metrics", r -> Response.prometheus(agent.scrape().get()))));
            s.listeners.add(AdminHttp.start("readiness", readiness, Access.ANY, AdminHttp.routes()
                    .get("/healthz/ready", r -> agent.ready().getAsBoolean()
                            ? Response.text(200, "ready\n")
                            : Response.text(503, "not ready\n"))));
        } catch (IOException | RuntimeException e) {
            s.close();
            throw e;
        }
        return s;
    }

    /**
     * Adds a fourth listener, {@code /flows} over mutual TLS for the control plane's flow relay (as
     * Hubble's peers serve Hubble Relay): {@code tls} presents the agent's SVID and requires a client
     * SVID of the trust bundle; of those, only {@code relay} is answered (403 otherwise). The admin
     * listener stays on loopback: this one answers the flow records and nothing else.
     *
     * @return where it is bound
     */
    public synchronized InetSocketAddress serveFlowsToRelay(SslContext tls, InetSocketAddress address, SpiffeId relay)
            throws IOException {
        requireNonNull(tls, "tls");
        requireNonNull(address, "address");
        requireNonNull(relay, "relay");
        if (relayFlows != null) {
            throw new IllegalStateException("the flows listener is already on " + relayFlows.address());
        }
        relayFlows = RelayFlowsServer.start(tls, address, relay, this::flows);
        return relayFlows.address();
    }

    /** TLS of the flows listener: the node agent's SVID, client SVIDs of the mesh's bundle required. */
    public static SslContext relayTls(Identities identities, String nodeName) throws IOException {
        SpiffeId self = IdentityProvider.nodeId(identities.trustDomain(), nodeName);
        try {
            return SpiffeTls.forServer(() -> {
                try {
                    return identities.svid(self);
                } catch (IdentityException e) {
                    throw new IllegalStateException("no certificate for " + self + " yet: " + e.getMessage(), e);
                }
            }, identities::bundle, SslProvider.JDK);
        } catch (SSLException e) {
            throw new IOException("cannot build the TLS context of the flows listener: " + e.getMessage(), e);
        }
    }

    /**
     * Serves the key rotation on the admin listener (loopback only): {@code GET /wireguard} (its
     * status, public keys only) and {@code POST /wireguard/rotate} ({@code wisp wireguard rotate}).
     */
    public void serveWireGuard(WireGuardKeys keys) {
        this.wireguard = requireNonNull(keys, "keys");
    }

    /**
     * Serves {@code POST /drain?handover=1} on the admin listener (loopback only): a new agent of
     * this node ({@code wisp node --takeover}) asks this one to hand over. {@code handOver} starts it
     * and returns at once (202); it throws {@link IllegalStateException} when the agent is draining
     * already (409).
     */
    public void serveHandover(Runnable handOver) {
        this.handover = requireNonNull(handOver, "handOver");
    }

    /**
     * Serves {@code GET /fair} (whether the share is on, and what it runs with) and {@code POST
     * /fair/switch?on=1|0} (turn it on or off now) on the admin listener (loopback only): the share's cost
     * to a pod alone is measured on and off in the same minute (issue 18).
     */
    public void serveFairShare(FairShare share) {
        this.fair = requireNonNull(share, "share");
    }

    private Response fair(String on) {
        FairShare f = fair;
        if (f == null) {
            return Response.text(503, "this agent does not serve its fair share yet\n");
        }
        if (on != null) {
            if (!on.equals("1") && !on.equals("0")) {
                return Response.text(400, "POST /fair/switch?on=1 or ?on=0, not on=" + on + "\n");
            }
            f.switchOn(on.equals("1"));
        }
        FairShare.Settings a = f.active();
        ObjectNode out = FlowLog.JSON.createObjectNode();
        out.put("on", f.on());
        out.put("window_ms", a.window().toMillis());
        out.put("quantum_bytes", a.quantum());
        out.put("connection_cost_bytes", a.connectionCost());
        return Response.json(200, render(out, "/fair"));
    }

    private Response handOver(Map<String, String> query) {
        if (!"1".equals(query.get("handover"))) {
            return Response.text(400, "only POST /drain?handover=1 is served (a new agent taking over); SIGTERM "
                    + "drains an agent\n");
        }
        Runnable h = handover;
        if (h == null) {
            return Response.text(503, "this agent cannot hand over yet\n");
        }
        try {
            h.run();
        } catch (IllegalStateException e) {
            return Response.text(409, e.getMessage() + "\n");
        }
        return Response.text(202, "handing over to the new agent of " + agent.nodeName() + ": not accepting, "
                + "draining\n");
    }

    private Response wireguard(boolean rotate) throws IOException {
        WireGuardKeys keys = wireguard;
        if (keys == null) {
            return Response.text(404, "WireGuard is not running on this node (is the agent started with --wireguard, "
                    + "and is its device up?)\n");
        }
        if (!rotate) {
            return Response.json(200, keys.status());
        }
        try {
            return Response.json(200, keys.rotate());
        } catch (IllegalStateException e) {
            return Response.text(409, e.getMessage() + "\n");
        }
    }

    public InetSocketAddress adminAddress() {
        return listeners.get(0).address();
    }

    public InetSocketAddress metricsAddress() {
        return listeners.get(1).address();
    }

    public InetSocketAddress readinessAddress() {
        return listeners.get(2).address();
    }

    private String configDump() throws IOException {
        Snapshot s = agent.snapshot().get();
        StringBuilder out = new StringBuilder("{\n");
        JsonFormat.Printer printer = JsonFormat.printer().omittingInsignificantWhitespace();
        for (String type : StateUpdates.TYPES) {
            String key = type.substring(type.lastIndexOf('.') + 1).toLowerCase() + "s";
            out.append("  \"").append(key).append("\": [");
            boolean first = true;
            for (Resource r : s.resources().getOrDefault(type, Map.of()).values()) {
                try {
                    out.append(first ? "\n    " : ",\n    ").append(printer.print(r));
                } catch (InvalidProtocolBufferException e) {
                    throw new IOException("cannot print resource " + r.getName(), e);
                }
                first = false;
            }
            out.append(first ? "],\n" : "\n  ],\n");
        }
        boolean first = true;
        for (var e : agent.figures().get().entrySet()) {
            out.append(first ? "" : ",\n").append("  \"").append(e.getKey()).append("\": ");
            out.append(switch (e.getValue()) {
                case Number n -> n.toString();
                case CharSequence text -> "\"" + text + "\"";
                default -> FlowLog.JSON.writeValueAsString(e.getValue()); // lists and maps (certificates)
            });
            first = false;
        }
        return out.append("\n}\n").toString();
    }

    private Response logging(Map<String, String> q) {
        String level = q.get("level");
        if (level == null) {
            throw new IllegalArgumentException("missing ?level= (error, warn, info, debug, trace)");
        }
        String logger = q.getOrDefault("logger", "ROOT");
        levels.set(logger, level);
        return Response.text(200, "logger " + logger + " now at " + level + "\n");
    }

    /**
     * {@code /flows}: {@code {"node", "last_seq", "connections": [FlowRecord...]}} plus capture's
     * {@code flows} when capture runs; {@code ?since=N} keeps the connections after record N.
     */
    private String flows(Map<String, String> query) {
        long since = 0;
        String raw = query.get("since");
        if (raw != null) {
            try {
                since = Long.parseLong(raw);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("since: '" + raw + "' is not a number");
            }
        }
        FlowLog log = agent.flows();
        ObjectNode out = FlowLog.JSON.createObjectNode();
        out.put("node", agent.nodeName());
        out.put("last_seq", log.last());
        out.set("connections", log.json(since));
        agent.captureEvents().get().ifPresent(events -> out.putRawValue("flows", new RawValue(events)));
        return render(out, "/flows");
    }

    /** An endpoint's answer {@code out} as indented JSON and a final newline. */
    private static String render(ObjectNode out, String endpoint) {
        try {
            return FlowLog.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(out) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot render " + endpoint, e);
        }
    }

    /** Stops every listener (readiness last, so that it answers 503 until the end). */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            if (relayFlows != null) {
                relayFlows.close();
            }
        }
        listeners.forEach(AdminHttp::close);
    }
}
