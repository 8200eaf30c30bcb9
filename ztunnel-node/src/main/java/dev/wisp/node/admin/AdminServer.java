package dev.wisp.node.admin;

import static java.util.Objects.requireNonNull;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.util.JsonFormat;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import com.sun.net.httpserver.HttpServer;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.node.state.Snapshot;
import dev.wisp.node.state.StateUpdates;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.BooleanSupplier;
import java.util.function.Function;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent's HTTP endpoints, each on its own listener as in ztunnel: admin on 127.0.0.1 only
 * ({@code /config_dump}: the state as JSON plus pool figures; {@code /logging?level=L[&logger=N]}:
 * change a log level; endpoints others add, such as {@code /flows}), Prometheus {@code /metrics}, and {@code /healthz/ready} (200 once the
 * agent is serving, 503 before and while draining). Served by the JDK's HTTP server on virtual
 * threads: these endpoints are off the data path.
 */
public final class AdminServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(AdminServer.class);

    /** Changes a logger's level; the launcher supplies it (the agent does not bind a logging backend). */
    @FunctionalInterface
    public interface LogLevels {
        /** @throws IllegalArgumentException when the level is not known */
        void set(String logger, String level);
    }

    private final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
    private final Map<String, HttpServer> servers = new LinkedHashMap<>();

    /**
     * @param snapshot the state to dump
     * @param extra further figures for {@code /config_dump} (name → value)
     * @param scrape the Prometheus exposition
     * @param ready whether the agent is ready
     */
    public AdminServer(Supplier<Snapshot> snapshot, Supplier<Map<String, Object>> extra, Supplier<String> scrape,
            BooleanSupplier ready, LogLevels levels) {
        requireNonNull(snapshot, "snapshot");
        requireNonNull(extra, "extra");
        requireNonNull(scrape, "scrape");
        requireNonNull(ready, "ready");
        requireNonNull(levels, "levels");
        this.snapshot = snapshot;
        this.extra = extra;
        this.scrape = scrape;
        this.ready = ready;
        this.levels = levels;
    }

    private final Supplier<Snapshot> snapshot;
    private final Supplier<Map<String, Object>> extra;
    private final Supplier<String> scrape;
    private final BooleanSupplier ready;
    private final LogLevels levels;

    /** Starts the admin endpoints; {@code address} must be a loopback address. */
    public InetSocketAddress bindAdmin(InetSocketAddress address) throws IOException {
        if (!address.getAddress().isLoopbackAddress()) {
            throw new IllegalArgumentException("the admin API listens on localhost only, not " + address);
        }
        return start("admin", address, Map.of("/config_dump", this::configDump, "/logging", this::logging));
    }

    /**
     * Adds {@code GET path} → {@code json(query parameters)} to the admin listener, which must be bound
     * already. An {@link IllegalArgumentException} from {@code json} is answered 400 with its message.
     */
    public void addJsonEndpoint(String path, Function<Map<String, String>, String> json) {
        requireNonNull(path, "path");
        requireNonNull(json, "json");
        HttpServer s = servers.get("admin");
        if (s == null) {
            throw new IllegalStateException("bind the admin API before adding " + path);
        }
        s.createContext(path, ex -> {
            try (ex) {
                String body;
                try {
                    body = json.apply(query(ex.getRequestURI().getRawQuery()));
                } catch (IllegalArgumentException e) {
                    send(ex, 400, "text/plain", e.getMessage() + "\n");
                    return;
                }
                send(ex, 200, "application/json", body);
            } catch (IOException | RuntimeException e) {
                LOG.debug("admin request {} failed: {}", ex.getRequestURI(), e.toString());
            }
        });
    }

    public InetSocketAddress bindMetrics(InetSocketAddress address) throws IOException {
        return start("metrics", address, Map.of("/metrics", ex -> send(ex, 200,
                "text/plain; version=0.0.4; charset=utf-8", scrape.get())));
    }

    public InetSocketAddress bindReadiness(InetSocketAddress address) throws IOException {
        return start("readiness", address, Map.of("/healthz/ready", ex -> {
            boolean ok = ready.getAsBoolean();
            send(ex, ok ? 200 : 503, "text/plain", ok ? "ready\n" : "not ready\n");
        }));
    }

    private InetSocketAddress start(String name, InetSocketAddress address, Map<String, HttpHandler> routes)
            throws IOException {
        HttpServer s = HttpServer.create(address, 64);
        routes.forEach((path, h) -> s.createContext(path, ex -> {
            try (ex) {
                h.handle(ex);
            } catch (IOException | RuntimeException e) {
                LOG.debug("{} request {} failed: {}", name, ex.getRequestURI(), e.toString());
            }
        }));
        s.setExecutor(executor);
        s.start();
        servers.put(name, s);
        return s.getAddress();
    }

    private void configDump(HttpExchange ex) throws IOException {
        Snapshot s = snapshot.get();
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
        for (var e : extra.get().entrySet()) {
            out.append(first ? "" : ",\n").append("  \"").append(e.getKey()).append("\": ");
            out.append(e.getValue() instanceof Number ? e.getValue().toString() : "\"" + e.getValue() + "\"");
            first = false;
        }
        out.append("\n}\n");
        send(ex, 200, "application/json", out.toString());
    }

    private void logging(HttpExchange ex) throws IOException {
        if (!"POST".equals(ex.getRequestMethod())) {
            send(ex, 405, "text/plain", "use POST /logging?level=debug[&logger=NAME]\n");
            return;
        }
        Map<String, String> q = query(ex.getRequestURI().getRawQuery());
        String level = q.get("level");
        if (level == null) {
            send(ex, 400, "text/plain", "missing ?level= (error, warn, info, debug, trace)\n");
            return;
        }
        String logger = q.getOrDefault("logger", "ROOT");
        try {
            levels.set(logger, level);
            send(ex, 200, "text/plain", "logger " + logger + " now at " + level + "\n");
        } catch (IllegalArgumentException e) {
            send(ex, 400, "text/plain", e.getMessage() + "\n");
        }
    }

    private static Map<String, String> query(String raw) {
        Map<String, String> out = new LinkedHashMap<>();
        if (raw == null) {
            return out;
        }
        for (String kv : raw.split("&")) {
            int eq = kv.indexOf('=');
            if (eq > 0) {
                out.put(URLDecoder.decode(kv.substring(0, eq), StandardCharsets.UTF_8),
                        URLDecoder.decode(kv.substring(eq + 1), StandardCharsets.UTF_8));
            }
        }
        return out;
    }

    private static void send(HttpExchange ex, int status, String type, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", type);
        ex.sendResponseHeaders(status, bytes.length);
        try (OutputStream os = ex.getResponseBody()) {
            os.write(bytes);
        }
    }

    @Override
    public void close() {
        servers.values().forEach(s -> s.stop(0));
        executor.close();
    }
}
