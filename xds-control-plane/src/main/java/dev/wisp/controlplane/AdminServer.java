package dev.wisp.controlplane;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.wisp.controlplane.config.ConfigError;
import dev.wisp.controlplane.config.ConfigSource;
import dev.wisp.controlplane.model.MeshObject;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.model.Origin;
import dev.wisp.controlplane.xds.WorkloadDiscoveryServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The control plane's HTTP admin API, on a loopback address only (it changes the mesh without
 * authentication): {@code /metrics} (Prometheus text), {@code /healthz/ready},
 * {@code /api/v1/status}, {@code /api/v1/objects?kind=K[&name=N][&namespace=NS]},
 * {@code POST /api/v1/apply?file=F} and {@code POST /api/v1/delete?file=F} (body: YAML). Answers
 * are JSON; refused writes answer 422 with every error. Requests run on virtual threads.
 */
final class AdminServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(AdminServer.class);
    static final int MAX_BODY = 8 << 20;
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

    private final HttpServer http;
    private final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
    private final ControlPlane cp;

    private AdminServer(HttpServer http, ControlPlane cp) {
        this.http = http;
        this.cp = cp;
    }

    static AdminServer start(InetSocketAddress address, ControlPlane cp) {
        HttpServer http;
        try {
            http = HttpServer.create(address, 16);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot listen for the admin API on " + address + ": " + e.getMessage(), e);
        }
        AdminServer a = new AdminServer(http, cp);
        http.setExecutor(a.executor);
        http.createContext("/", a::handle);
        http.start();
        return a;
    }

    InetSocketAddress address() {
        return http.getAddress();
    }

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            String path = ex.getRequestURI().getPath();
            Map<String, String> query = query(ex.getRequestURI().getRawQuery());
            String method = ex.getRequestMethod();
            switch (path) {
                case "/metrics" -> send(ex, 200, "text/plain; version=0.0.4", cp.registry().scrape());
                case "/healthz/ready" -> {
                    boolean ready = cp.translation() != null;
                    send(ex, ready ? 200 : 503, "text/plain", ready ? "ready\n" : "no valid configuration yet\n");
                }
                case "/api/v1/status" -> json(ex, 200, status());
                case "/api/v1/objects" -> objects(ex, query);
                case "/api/v1/apply", "/api/v1/delete" -> {
                    if (!method.equals("POST")) {
                        json(ex, 405, error("use POST"));
                        return;
                    }
                    write(ex, query.getOrDefault("file", "<stdin>"), path.endsWith("apply"));
                }
                default -> json(ex, 404, error("no such endpoint: " + path));
            }
        } catch (RuntimeException e) {
            log.error("admin request {} failed", ex.getRequestURI(), e);
            json(ex, 500, error("internal error: " + e.getMessage()));
        }
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

    private void objects(HttpExchange ex, Map<String, String> query) throws IOException {
        String kindArg = query.getOrDefault("kind", "");
        String kind = KINDS.get(kindArg.toLowerCase(Locale.ROOT));
        if (kind == null) {
            json(ex, 400, error("the server doesn't have a resource type \"" + kindArg + "\"; known: pods, services, "
                    + "nodes, authorizationpolicies, peerauthentications, meshconfigs"));
            return;
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
            json(ex, 404, error(kind + " \"" + name + "\" not found"));
            return;
        }
        ObjectNode out = JSON.createObjectNode();
        out.set("items", items);
        json(ex, 200, out);
    }

    private void write(HttpExchange ex, String file, boolean apply) throws IOException {
        String body;
        try (InputStream in = ex.getRequestBody()) {
            byte[] bytes = in.readNBytes(MAX_BODY + 1);
            if (bytes.length > MAX_BODY) {
                json(ex, 413, error("request larger than " + MAX_BODY + " bytes"));
                return;
            }
            body = new String(bytes, StandardCharsets.UTF_8);
        }
        try {
            List<ConfigSource.Change> changes = apply ? cp.source().apply(file, body) : cp.source().delete(file, body);
            ObjectNode out = JSON.createObjectNode();
            ArrayNode arr = out.putArray("changes");
            for (ConfigSource.Change c : changes) {
                arr.addObject().put("kind", c.ref().kind()).put("namespace", c.ref().namespace())
                        .put("name", c.ref().name()).put("outcome", c.outcome());
            }
            json(ex, 200, out);
        } catch (ConfigSource.ConfigRejectedException e) {
            ObjectNode out = JSON.createObjectNode();
            ArrayNode arr = out.putArray("errors");
            for (ConfigError err : e.errors()) {
                arr.add(err.toString());
            }
            json(ex, 422, out);
        }
    }

    private static ObjectNode error(String message) {
        ObjectNode n = JSON.createObjectNode();
        n.putArray("errors").add(message);
        return n;
    }

    private static Map<String, String> query(String raw) {
        Map<String, String> out = new HashMap<>();
        if (raw == null || raw.isEmpty()) {
            return out;
        }
        for (String part : raw.split("&")) {
            int eq = part.indexOf('=');
            if (eq > 0) {
                out.put(URLDecoder.decode(part.substring(0, eq), StandardCharsets.UTF_8),
                        URLDecoder.decode(part.substring(eq + 1), StandardCharsets.UTF_8));
            }
        }
        return out;
    }

    private static void json(HttpExchange ex, int code, Object body) throws IOException {
        send(ex, code, "application/json", JSON.writerWithDefaultPrettyPrinter().writeValueAsString(body));
    }

    private static void send(HttpExchange ex, int code, String type, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", type);
        ex.sendResponseHeaders(code, bytes.length == 0 ? -1 : bytes.length);
        if (bytes.length > 0) {
            ex.getResponseBody().write(bytes);
        }
    }

    @Override
    public void close() {
        http.stop(0);
        executor.shutdownNow();
    }
}
