package dev.wisp.base.admin;

import static java.util.Objects.requireNonNull;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One HTTP listener of admin endpoints, shared by the node agent (admin, metrics and readiness
 * listeners) and the control plane (admin API): exact-path routes, each answering one method;
 * another path is answered 404, another method 405 (with {@code Allow}), a handler's {@link
 * IllegalArgumentException} 400 and its {@link Refused} with the status it names; anything else it
 * throws is logged and answered 500. Error bodies are rendered by the listener's {@link ErrorBody}
 * (plain text, or the control plane's JSON).
 *
 * <p>{@link Access#LOOPBACK_ONLY} refuses to bind any other address: those endpoints change the
 * mesh or the agent without authentication.
 *
 * <p>Threads: the JDK's HTTP server accepts on its own dispatcher thread and runs each request on a
 * virtual thread of this listener's executor; these endpoints are off the data path.
 */
public final class AdminHttp implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(AdminHttp.class);

    /** The request methods admin endpoints answer. */
    public enum Method {
        GET, POST
    }

    /** Who may reach a listener. */
    public enum Access {
        /** Bind loopback addresses only; anything else is refused before binding. */
        LOOPBACK_ONLY,
        /** Any address (metrics and readiness, which only read). */
        ANY
    }

    /** What an endpoint answers. */
    public record Response(int status, String contentType, String body) {
        public Response {
            requireNonNull(contentType, "contentType");
            requireNonNull(body, "body");
        }

        public static Response text(int status, String body) {
            return new Response(status, "text/plain; charset=utf-8", body);
        }

        public static Response json(int status, String body) {
            return new Response(status, "application/json", body);
        }

        /** The Prometheus text exposition format, 0.0.4. */
        public static Response prometheus(String body) {
            return new Response(200, "text/plain; version=0.0.4; charset=utf-8", body);
        }
    }

    /** Renders an error answer (404, 405, 400, 413, 500 …) from its message. */
    @FunctionalInterface
    public interface ErrorBody {
        /** One line of plain text. */
        ErrorBody TEXT = (status, message) -> Response.text(status, message + "\n");

        Response render(int status, String message);
    }

    /** An endpoint. */
    @FunctionalInterface
    public interface Handler {
        Response handle(Request request) throws IOException;
    }

    /** A handler's refusal, answered with {@code status} and the message through the {@link ErrorBody}. */
    public static final class Refused extends RuntimeException {
        private final int status;

        public Refused(int status, String message) {
            super(requireNonNull(message, "message"));
            if (status < 400 || status > 599) {
                throw new IllegalArgumentException("a refusal is a 4xx or 5xx status, not " + status);
            }
            this.status = status;
        }

        public int status() {
            return status;
        }
    }

    /** The request as an endpoint sees it: method, path, decoded query parameters, body on demand. */
    public static final class Request {
        private final HttpExchange exchange;
        private final Method method;
        private final Map<String, String> query;

        private Request(HttpExchange exchange, Method method) {
            this.exchange = exchange;
            this.method = method;
            this.query = AdminHttp.query(exchange.getRequestURI().getRawQuery());
        }

        public Method method() {
            return method;
        }

        public String path() {
            return exchange.getRequestURI().getPath();
        }

        /** Query parameters, decoded; the last of a repeated name wins. */
        public Map<String, String> query() {
            return query;
        }

        /** The body as UTF-8; a body over {@code maxBytes} is refused with 413. */
        public String body(int maxBytes) throws IOException {
            try (InputStream in = exchange.getRequestBody()) {
                byte[] bytes = in.readNBytes(maxBytes + 1);
                if (bytes.length > maxBytes) {
                    throw new Refused(413, "request larger than " + maxBytes + " bytes");
                }
                return new String(bytes, StandardCharsets.UTF_8);
            }
        }
    }

    /** The endpoints of one listener, by exact path. */
    public static final class Routes {
        private record Route(Method method, Handler handler) {}

        private final Map<String, Route> routes = new LinkedHashMap<>();
        private ErrorBody errors = ErrorBody.TEXT;

        private Routes() {}

        public Routes get(String path, Handler handler) {
            return add(path, Method.GET, handler);
        }

        public Routes post(String path, Handler handler) {
            return add(path, Method.POST, handler);
        }

        /** How error answers are rendered (default: {@link ErrorBody#TEXT}). */
        public Routes errors(ErrorBody errors) {
            this.errors = requireNonNull(errors, "errors");
            return this;
        }

        private Routes add(String path, Method method, Handler handler) {
            requireNonNull(path, "path");
            if (!path.startsWith("/")) {
                throw new IllegalArgumentException("a route path starts with '/', not '" + path + "'");
            }
            if (routes.putIfAbsent(path, new Route(method, requireNonNull(handler, "handler"))) != null) {
                throw new IllegalArgumentException("route " + path + " is given twice");
            }
            return this;
        }
    }

    public static Routes routes() {
        return new Routes();
    }

    private final String name;
    private final HttpServer server;
    private final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
    private final Map<String, Routes.Route> routes;
    private final ErrorBody errors;

    private AdminHttp(String name, HttpServer server, Routes routes) {
        this.name = name;
        this.server = server;
        this.routes = Map.copyOf(routes.routes);
        this.errors = routes.errors;
    }

    /**
     * Binds {@code address} and serves {@code routes} until {@link #close}.
     *
     * @param name the listener's name in errors and logs ("admin", "metrics" …)
     * @throws IOException naming the listener and the address when it cannot bind
     */
    public static AdminHttp start(String name, InetSocketAddress address, Access access, Routes routes)
            throws IOException {
        requireNonNull(name, "name");
        requireNonNull(address, "address");
        requireNonNull(access, "access");
        requireNonNull(routes, "routes");
        if (access == Access.LOOPBACK_ONLY && (address.getAddress() == null
                || !address.getAddress().isLoopbackAddress())) {
            throw new IllegalArgumentException("the " + name + " API listens on localhost only (it is not "
                    + "authenticated), not on " + address);
        }
        HttpServer server;
        try {
            server = HttpServer.create(address, 64);
        } catch (IOException e) {
            throw new IOException("cannot listen for the " + name + " API on " + address + ": " + e.getMessage()
                    + " (is another process using the port?)", e);
        }
        AdminHttp http = new AdminHttp(name, server, routes);
        server.setExecutor(http.executor);
        server.createContext("/", http::handle);
        server.start();
        return http;
    }

    /** Where this listener is bound (the port chosen when 0 was asked for). */
    public InetSocketAddress address() {
        return server.getAddress();
    }

    private void handle(HttpExchange ex) {
        try (ex) {
            send(ex, answer(ex));
        } catch (IOException e) {
            // The client went away mid-answer: nothing to tell it.
            LOG.debug("{} request {}: {}", name, ex.getRequestURI(), e.toString());
        }
    }

    private Response answer(HttpExchange ex) {
        String path = ex.getRequestURI().getPath();
        Routes.Route route = routes.get(path);
        if (route == null) {
            return errors.render(404, "no such endpoint: " + path);
        }
        if (!route.method().name().equals(ex.getRequestMethod())) {
            ex.getResponseHeaders().set("Allow", route.method().name());
            return errors.render(405, "use " + route.method() + " " + path);
        }
        try {
            return route.handler().handle(new Request(ex, route.method()));
        } catch (Refused e) {
            return errors.render(e.status(), e.getMessage());
        } catch (IllegalArgumentException e) {
            return errors.render(400, e.getMessage());
        } catch (IOException | RuntimeException e) {
            LOG.error("{} request {} failed", name, ex.getRequestURI(), e);
            return errors.render(500, "internal error: " + e.getMessage());
        }
    }

    private static void send(HttpExchange ex, Response r) throws IOException {
        byte[] bytes = r.body().getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", r.contentType());
        ex.sendResponseHeaders(r.status(), bytes.length == 0 ? -1 : bytes.length);
        if (bytes.length > 0) {
            try (OutputStream os = ex.getResponseBody()) {
                os.write(bytes);
            }
        }
    }

    private static Map<String, String> query(String raw) {
        Map<String, String> out = new LinkedHashMap<>();
        if (raw == null || raw.isEmpty()) {
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

    /** Stops listening at once and ends the requests in progress. */
    @Override
    public void close() {
        server.stop(0);
        executor.shutdownNow();
    }
}
