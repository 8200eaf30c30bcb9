package dev.wisp.base.admin;

import static java.util.Objects.requireNonNull;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
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
 * mesh or the agent without authentication. A listener may also admit each request by who sent it
 * ({@link Routes#gate}: its address and its {@code Authorization} header). A {@link Response#streamed} answer is written as it is produced
 * (chunked), for endpoints that follow new events.
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

    /**
     * What an endpoint answers: a whole body, or ({@link #streamed}) a body written as it is produced.
     *
     * @param stream when not null, writes the body after a 200 with chunked encoding (then {@code body}
     *     is empty)
     */
    public record Response(int status, String contentType, String body, StreamBody stream) {
        public Response {
            requireNonNull(contentType, "contentType");
            requireNonNull(body, "body");
        }

        public Response(int status, String contentType, String body) {
            this(status, contentType, body, null);
        }

        /**
         * A 200 whose body {@code stream} writes until it returns, the client goes away (its writes
         * throw), or the listener closes (the writing thread is interrupted).
         */
        public static Response streamed(String contentType, StreamBody stream) {
            return new Response(200, contentType, "", requireNonNull(stream, "stream"));
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

    /** Writes a streamed answer's body; each {@code flush} of {@code out} sends what was written. */
    @FunctionalInterface
    public interface StreamBody {
        void write(OutputStream out) throws IOException, InterruptedException;
    }

    /** Who sent a request, as a {@link Gate} sees it. */
    public record Caller(InetAddress address, Optional<String> authorization) {
        public Caller {
            requireNonNull(address, "address");
            requireNonNull(authorization, "authorization");
        }
    }

    /**
     * Admits a request before its endpoint runs, or refuses it by throwing {@link Refused} (401,
     * 403 …). Runs on the request's thread for every request, known path or not.
     */
    @FunctionalInterface
    public interface Gate {
        /** Admits every request (the listener's {@link Access} is the only guard). */
        Gate ANYONE = caller -> {};

        void admit(Caller caller);

        /**
         * Admits a request from a loopback address; from elsewhere, only one that sends {@code
         * Authorization: Bearer <token>} (compared in constant time) when a token is configured, and
         * none when it is not (403): what reaches the mesh's flows from outside the machine must
         * authenticate.
         */
        static Gate loopbackOrBearer(Optional<String> token) {
            requireNonNull(token, "token");
            token.ifPresent(t -> {
                if (t.length() < 16) {
                    throw new IllegalArgumentException("a bearer token must have at least 16 characters");
                }
            });
            byte[] expected = token.map(t -> ("Bearer " + t).getBytes(StandardCharsets.UTF_8)).orElse(null);
            return caller -> {
                if (caller.address().isLoopbackAddress()) {
                    return;
                }
                if (expected == null) {
                    throw new Refused(403, "this endpoint answers localhost only: no bearer token is configured "
                            + "(--admin-token-file) to authenticate " + caller.address().getHostAddress());
                }
                byte[] given = caller.authorization().orElse("").getBytes(StandardCharsets.UTF_8);
                if (!java.security.MessageDigest.isEqual(expected, given)) {
                    throw new Refused(401, "send 'Authorization: Bearer <token>' with the admin token");
                }
            };
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
        private Gate gate = Gate.ANYONE;

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

        /** Who may call these endpoints (default: {@link Gate#ANYONE}). */
        public Routes gate(Gate gate) {
            this.gate = requireNonNull(gate, "gate");
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
    private final Gate gate;

    private AdminHttp(String name, HttpServer server, Routes routes) {
        this.name = name;
        this.server = server;
        this.routes = Map.copyOf(routes.routes);
        this.errors = routes.errors;
        this.gate = routes.gate;
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
            throw cannotListen(name, address, e);
        }
        return serve(name, server, routes);
    }

    private static IOException cannotListen(String name, InetSocketAddress address, IOException e) {
        return new IOException("cannot listen for the " + name + " API on " + address + ": " + e.getMessage()
                + " (is another process using the port?)", e);
    }

    private static AdminHttp serve(String name, HttpServer server, Routes routes) {
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
        try {
            gate.admit(new Caller(ex.getRemoteAddress().getAddress(), Optional.ofNullable(ex.getRequestHeaders()
                    .getFirst("Authorization"))));
        } catch (Refused e) {
            return errors.render(e.status(), e.getMessage());
        }
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
        if (r.stream() != null) {
            ex.getResponseHeaders().set("Content-Type", r.contentType());
            ex.getResponseHeaders().set("Cache-Control", "no-store");
            ex.sendResponseHeaders(200, 0);
            try (OutputStream os = ex.getResponseBody()) {
                r.stream().write(os);
            } catch (InterruptedException e) {
                // The listener is closing: end the answer.
                Thread.currentThread().interrupt();
            }
            return;
        }
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
