package dev.wisp.cli.route;

import static java.util.Objects.requireNonNull;

import dev.wisp.controlplane.config.ConfigError;
import dev.wisp.controlplane.config.ConfigSet;
import dev.wisp.controlplane.config.LoadResult;
import dev.wisp.controlplane.model.MeshModel;
import dev.wisp.controlplane.route.HttpRequest;
import dev.wisp.controlplane.route.HttpRequest.Header;
import dev.wisp.controlplane.route.RouteDecision;
import dev.wisp.controlplane.route.RouteEngine;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.random.RandomGenerator;
import java.util.regex.Pattern;

/**
 * {@code wisp route check} without the command line: the control plane's decoder and route engine
 * over the given files and one request, as a JSON-ready map (pure but for the random draws it is
 * given).
 */
final class RouteCheck {
    private static final Pattern METHOD = Pattern.compile("[A-Z]{1,16}");
    private static final Pattern TARGET = Pattern.compile("([a-z0-9-]{1,63})/([a-z0-9.-]{1,253}):([0-9]{1,5})");

    private RouteCheck() {}

    /** The files are refused: every error, each naming file, object and field. */
    static final class InvalidFilesException extends Exception {
        private final List<ConfigError> errors;

        InvalidFilesException(List<ConfigError> errors) {
            super(errors.size() + " error(s)");
            this.errors = errors;
        }

        List<ConfigError> errors() {
            return errors;
        }
    }

    /** The JSON fields and a sentence for the operator. */
    record Result(Map<String, Object> json, String reason) {}

    /** The query of the command line. */
    record Query(String to, String request, List<String> headers, int sample) {}

    /**
     * Decides {@code q} over {@code files} (name → text).
     *
     * @return the decision's fields in the contract's order, then {@code backends} with a sample; and
     *         the first decision's reason
     * @throws IllegalArgumentException for a malformed query or an unknown service port
     */
    static Result check(Map<String, String> files, Query q, RandomGenerator random)
            throws InvalidFilesException {
        requireNonNull(q, "q");
        LoadResult loaded = ConfigSet.load(files);
        if (!loaded.valid()) {
            throw new InvalidFilesException(loaded.errors());
        }
        MeshModel model = loaded.model();
        var m = TARGET.matcher(q.to());
        if (!m.matches() || Integer.parseInt(m.group(3)) < 1 || Integer.parseInt(m.group(3)) > 65535) {
            throw new IllegalArgumentException("--to: '" + q.to() + "' is not NAMESPACE/SERVICE:PORT");
        }
        RouteEngine.Target target = new RouteEngine.Target(m.group(1), m.group(2), Integer.parseInt(m.group(3)));
        HttpRequest request = request(q, target, model.mesh().clusterDomain());
        RouteEngine engine = RouteEngine.of(model);
        RouteDecision d = engine.decide(target, null, request, random);
        Map<String, Object> out = json(d);
        if (q.sample() > 0) {
            Map<String, Integer> counts = new TreeMap<>();
            for (int i = 0; i < q.sample(); i++) {
                RouteDecision s = engine.decide(target, null, request, random);
                counts.merge(s.forwarded() ? s.backend().display() : String.valueOf(s.status()), 1, Integer::sum);
            }
            out.put("backends", counts);
        }
        return new Result(out, d.reason());
    }

    private static HttpRequest request(Query q, RouteEngine.Target target, String clusterDomain) {
        String[] parts = q.request().split(" ", -1);
        if (parts.length != 2 || !METHOD.matcher(parts[0]).matches() || !parts[1].startsWith("/")) {
            throw new IllegalArgumentException("--request: '" + q.request() + "' is not \"METHOD PATH[?QUERY]\" "
                    + "(e.g. \"GET /api/v1?page=2\")");
        }
        String target0 = parts[1];
        int question = target0.indexOf('?');
        String host = target.service() + "." + target.namespace() + ".svc." + clusterDomain
                + (target.port() == 80 ? "" : ":" + target.port());
        List<Header> headers = new ArrayList<>();
        for (String h : q.headers()) {
            int colon = h.indexOf(':');
            String name = colon <= 0 ? "" : h.substring(0, colon).trim();
            if (name.isEmpty() || !name.matches("[A-Za-z0-9!#$%&'*+.^_`|~-]+")) {
                throw new IllegalArgumentException("--header: '" + h + "' is not \"Name: value\"");
            }
            String value = h.substring(colon + 1).trim();
            if (name.equalsIgnoreCase("host")) {
                host = value;
            } else {
                headers.add(new Header(name, value));
            }
        }
        return new HttpRequest(parts[0], question < 0 ? target0 : target0.substring(0, question),
                question < 0 ? "" : target0.substring(question + 1), host, headers);
    }

    private static Map<String, Object> json(RouteDecision d) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("status", d.status());
        out.put("route", d.route() == null ? null : d.route().qualifiedName());
        out.put("rule", d.rule() < 0 ? null : d.rule());
        out.put("backend", d.backend() == null ? null : d.backend().display());
        out.put("path", d.path());
        out.put("host", d.host());
        Map<String, String> headers = new LinkedHashMap<>();
        for (Header h : d.requestHeaders()) {
            headers.merge(h.name().toLowerCase(Locale.ROOT), h.value(), (a, b) -> a + "," + b);
        }
        out.put("requestHeaders", headers);
        out.put("location", d.location());
        out.put("mirrors", d.mirrors().stream().map(b -> b.display()).toList());
        if (d.delay() != null) {
            out.put("delayMs", d.delay().toMillis()); // an HTTPFault's delay, only when one was drawn
        }
        if (d.grpcStatus() != null) {
            out.put("grpcStatus", d.grpcStatus()); // an HTTPFault's gRPC abort: a gRPC call's status
        }
        if (d.rateLimit() != null) {
            // The rule's bucket, not its state: the decision is the one made when a token is there.
            Map<String, Object> limit = new LinkedHashMap<>();
            limit.put("name", d.rateLimit().ref().qualifiedName());
            limit.put("tokens", d.rateLimit().tokens());
            limit.put("tokensPerFill", d.rateLimit().tokensPerFill());
            limit.put("fillIntervalMs", d.rateLimit().fillInterval().toMillis());
            out.put("rateLimit", limit);
        }
        return out;
    }
}
