package dev.wisp.controlplane;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.wisp.base.admin.AdminHttp;
import dev.wisp.base.admin.AdminHttp.Access;
import dev.wisp.base.admin.AdminHttp.Response;
import dev.wisp.controlplane.ca.RootRotation;
import dev.wisp.controlplane.config.ConfigError;
import dev.wisp.controlplane.flows.FlowRelay;
import dev.wisp.controlplane.config.ConfigSource;
import dev.wisp.controlplane.model.MeshObject;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.model.Origin;
import dev.wisp.controlplane.xds.WorkloadDiscoveryServer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * The control plane's HTTP admin API: {@code /metrics} (Prometheus text), {@code /healthz/ready},
 * {@code /api/v1/status}, {@code /api/v1/objects?kind=K[&name=N][&namespace=NS]},
 * {@code POST /api/v1/apply?file=F} and {@code POST /api/v1/delete?file=F} (body: YAML), the flow
 * relay's {@code /api/v1/flows?since=N[&follow=true][&view=calls]} (JSON lines), the live mesh page {@code
 * /ui}, and {@code wisp ca rotate}'s {@code GET /api/v1/ca/rotation} and {@code POST /api/v1/ca/rotate?step=S}. Answers are JSON; refused writes answer 422 with every error. Requests run on virtual
 * threads.
 *
 * <p>It changes the mesh and shows its flows, so every request passes {@link
 * AdminHttp.Gate#loopbackOrBearer}: from localhost, or with the configured bearer token; without a
 * token the listener binds a loopback address only.
 */
final class AdminServer implements AutoCloseable {
    static final int MAX_BODY = 8 << 20;
    static final String NDJSON = "application/x-ndjson";
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Kind aliases as kubectl accepts them (singular, plural, short). */
    private static final Map<String, String> KINDS = new HashMap<>();

    static {
        alias("Pod", "pod", "pods", "po");
        alias("Service", "service", "services", "svc");
        alias("Node", "node", "nodes", "no");
        alias("AuthorizationPolicy", "authorizationpolicy", "authorizationpolicies", "ap");
        alias("PeerAuthentication", "peerauthentication", "peerauthentications", "pa");
        alias("MeshConfig", "meshconfig", "meshconfigs");
    }

    private static void alias(String kind, String... names) {
        for (String n : names) {
            KINDS.put(n, kind);
        }
    }

    private final AdminHttp http;
    private final ControlPlane cp;

    private AdminServer(InetSocketAddress address, Optional<String> token, ControlPlane cp) throws IOException {
        this.cp = cp;
        this.http = AdminHttp.start("control plane admin", address, token.isPresent()
                ? Access.ANY
                : Access.LOOPBACK_ONLY,
                AdminHttp.routes()
                        .gate(AdminHttp.Gate.loopbackOrBearer(token))
                        .get("/ui", r -> new Response(200, "text/html; charset=utf-8", MeshPage.html()))
                        .get("/api/v1/flows", r -> flows(r.query()))
                        .get("/metrics", r -> Response.prometheus(cp.registry().scrape()))
                        .get("/healthz/ready", r -> ready(cp))
                        .get("/api/v1/status", r -> json(200, status()))
                        .get("/api/v1/objects", r -> objects(r.query()))
                        .post("/api/v1/apply", r -> write(r, true))
                        .post("/api/v1/delete", r -> write(r, false))
                        .get("/api/v1/ca/rotation", r -> rotation(null))
                        .post("/api/v1/ca/rotate", r -> rotation(r.query().getOrDefault("step", "")))
                        .errors((status, message) -> json(status, error(message))));
    }

    private AdminServer(ControlPlane cp, InetSocketAddress metricsAddress) throws IOException {
        this.cp = cp;
        this.http = AdminHttp.start("control plane metrics", metricsAddress, Access.ANY, AdminHttp.routes()
                .get("/metrics", r -> Response.prometheus(cp.registry().scrape()))
                .get("/healthz/ready", r -> ready(cp))
                .errors((status, message) -> json(status, error(message))));
    }

    private static Response ready(ControlPlane cp) {
        return cp.translation() != null
                ? Response.text(200, "ready\n")
                : Response.text(503, "no valid configuration yet\n");
    }

    /** Only {@code /metrics} and {@code /healthz/ready}, which read and change nothing: any address. */
    static AdminServer startMetrics(InetSocketAddress address, ControlPlane cp) {
        try {
            return new AdminServer(cp, address);
        } catch (IOException e) {
            throw new UncheckedIOException(e.getMessage(), e);
        }
    }

    static AdminServer start(InetSocketAddress address, Optional<String> token, ControlPlane cp) {
        try {
            return new AdminServer(address, token, cp);
        } catch (IOException e) {
            throw new UncheckedIOException(e.getMessage(), e);
        }
    }

    InetSocketAddress address() {
        return http.address();
    }

    private ObjectNode status() {
        ObjectNode s = JSON.createObjectNode();
        ControlPlane.ConfigStatus st = cp.configStatus();
        s.put("generation", st.generation());
        s.put("appliedAt", String.valueOf(st.appliedAt()));
        ArrayNode errors = s.putArray("errors");
        st.errors().forEach(e -> errors.add(e.toString()));
        ArrayNode agents = s.putArray("connectedAgents");
        cp.discovery().connectedNodes().forEach(agents::add);
        ArrayNode nacks = s.putArray("nacks");
        for (WorkloadDiscoveryServer.Nack n : cp.discovery().nacks()) {
            nacks.addObject().put("node", n.node()).put("type", n.typeUrl()).put("generation", n.generation())
                    .put("message", n.message()).put("at", n.at().toString());
        }
        ArrayNode acks = s.putArray("acks");
        for (WorkloadDiscoveryServer.AckCount a : cp.discovery().acks()) {
            acks.addObject().put("type", a.typeUrl()).put("generation", a.generation()).put("agents", a.agents())
                    .put("lastAt", a.lastAt().toString());
        }
        return s;
    }

    /**
     * {@code /api/v1/flows?since=N[&follow=true]}: the relay's merged records after relay number N as
     * JSON lines (one object per line: the agent's record, {@code node}, the relay's {@code seq} and
     * the agent's {@code node_seq}); with {@code follow}, then each new one as it arrives (blank lines
     * keep a quiet stream alive). {@code view=calls} numbers and serves one record per call instead
     * (the server agent's; the client's only when no server agent recorded it), as the live page counts.
     */
    private Response flows(Map<String, String> query) throws IOException {
        long since = number(query, "since");
        FlowRelay.View view = switch (query.getOrDefault("view", "records")) {
            case "records" -> FlowRelay.View.RECORDS;
            case "calls" -> FlowRelay.View.CALLS;
            default -> throw new IllegalArgumentException("view: '" + query.get("view") + "' is not records or calls");
        };
        boolean follow = Boolean.parseBoolean(query.getOrDefault("follow", "false"));
        if (follow) {
            return Response.streamed(NDJSON, out -> cp.relay().follow(view, since, out));
        }
        StringBuilder lines = new StringBuilder();
        try {
            for (ObjectNode f : cp.relay().read(view, since, java.time.Duration.ofSeconds(3))) {
                lines.append(JSON.writeValueAsString(f)).append('\n');
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AdminHttp.Refused(503, "the control plane is stopping");
        }
        return new Response(200, NDJSON, lines.toString());
    }

    private static long number(Map<String, String> query, String name) {
        String raw = query.getOrDefault(name, "0");
        try {
            long n = Long.parseLong(raw);
            if (n < 0) {
                throw new NumberFormatException();
            }
            return n;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(name + ": '" + raw + "' is not a record number (0 or more)");
        }
    }

    private Response objects(Map<String, String> query) {
        String kindArg = query.getOrDefault("kind", "");
        String kind = KINDS.get(kindArg.toLowerCase(Locale.ROOT));
        if (kind == null) {
            return json(400, error("the server doesn't have a resource type \"" + kindArg + "\"; known: pods, "
                    + "services, nodes, authorizationpolicies, peerauthentications, meshconfigs"));
        }
        String name = query.get("name");
        String namespace = query.get("namespace");
        ArrayNode items = JSON.createArrayNode();
        var warnings = cp.translation() == null ? Map.<ObjectRef, List<String>>of() : cp.translation().warnings();
        for (MeshObject o : cp.model().objects().values()) {
            ObjectRef ref = o.ref();
            if (!ref.kind().equals(kind) || (name != null && !ref.name().equals(name))
                    || (namespace != null && !ref.namespace().equals(namespace))) {
                continue;
            }
            ObjectNode item = items.addObject();
            item.put("kind", ref.kind()).put("namespace", ref.namespace()).put("name", ref.name());
            Origin origin = cp.model().origin(ref);
            item.put("source", origin == null ? "" : origin.toString());
            ArrayNode w = item.putArray("warnings");
            warnings.getOrDefault(ref, List.of()).forEach(w::add);
        }
        if (name != null && items.isEmpty()) {
            return json(404, error(kind + " \"" + name + "\" not found"));
        }
        ObjectNode out = JSON.createObjectNode();
        out.set("items", items);
        return json(200, out);
    }

    private Response write(AdminHttp.Request request, boolean apply) throws IOException {
        String file = request.query().getOrDefault("file", "<stdin>");
        String body = request.body(MAX_BODY);
        try {
            List<ConfigSource.Change> changes = apply ? cp.source().apply(file, body) : cp.source().delete(file, body);
            ObjectNode out = JSON.createObjectNode();
            ArrayNode arr = out.putArray("changes");
            for (ConfigSource.Change c : changes) {
                arr.addObject().put("kind", c.ref().kind()).put("namespace", c.ref().namespace())
                        .put("name", c.ref().name()).put("outcome", c.outcome());
            }
            return json(200, out);
        } catch (ConfigSource.ConfigRejectedException e) {
            ObjectNode out = JSON.createObjectNode();
            ArrayNode arr = out.putArray("errors");
            for (ConfigError err : e.errors()) {
                arr.add(err.toString());
            }
            return json(422, out);
        }
    }

    /**
     * {@code GET /api/v1/ca/rotation}: the CA's rotation phase; {@code POST /api/v1/ca/rotate?step=add|switch|retire}
     * runs that step (409 when the phase does not allow it, 503 before the CA exists).
     */
    private Response rotation(String step) throws IOException {
        RootRotation.Status st;
        try {
            st = step == null
                    ? cp.rotation().status().orElseThrow(() -> new IllegalStateException(
                            "the control plane has no CA yet (no valid configuration read); retry"))
                    : cp.rotation().step(RootRotation.Step.parse(step));
        } catch (RootRotation.OutOfOrderException e) {
            return json(409, error(e.getMessage()));
        } catch (IllegalStateException e) {
            return json(503, error(e.getMessage()));
        }
        ObjectNode s = JSON.createObjectNode();
        s.put("phase", st.phase().name().toLowerCase(Locale.ROOT)).put("next", st.phase().next().label())
                .put("description", RootRotation.describe(st)).put("pluggedIn", st.pluggedIn())
                .put("signingRoot", RootRotation.serial(st.signingRoot()))
                .put("addedRoot", st.added().map(RootRotation::serial).orElse(""))
                .put("bundleWatchers", cp.certificates().bundleWatchers());
        ArrayNode trusted = s.putArray("trustedRoots");
        st.trusted().forEach(r -> trusted.addObject().put("serial", RootRotation.serial(r))
                .put("subject", r.getSubjectX500Principal().getName()).put("notAfter", r.getNotAfter().toInstant()
                        .toString()));
        return json(200, s);
    }

    private static ObjectNode error(String message) {
        ObjectNode n = JSON.createObjectNode();
        n.putArray("errors").add(message);
        return n;
    }

    private static Response json(int status, Object body) {
        try {
            return Response.json(status, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(body));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot render an admin answer", e);
        }
    }

    @Override
    public void close() {
        http.close();
    }
}
