package dev.wisp.waypoint.route;

import static java.util.Objects.requireNonNull;

import io.envoyproxy.envoy.config.route.v3.HeaderMatcher;
import io.envoyproxy.envoy.config.route.v3.QueryParameterMatcher;
import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.config.route.v3.RouteAction;
import io.envoyproxy.envoy.config.route.v3.RouteMatch;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.envoyproxy.envoy.config.route.v3.WeightedCluster;
import io.envoyproxy.envoy.type.matcher.v3.StringMatcher;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * Envoy's route selection over one virtual host, pure (the random draw is an argument): the first
 * route whose match holds — path ({@code path} exact, {@code prefix}, {@code safe_regex} on the whole
 * path), every header matcher ({@code :method} included; exact, prefix, suffix, contains, regex,
 * present, inverted), every query parameter matcher — decides. Its action becomes a {@link Decision}:
 * a cluster (one, or drawn by the weights of {@code weighted_clusters}) with the request as rewritten
 * ({@link RouteActions}), a redirect, or a direct response. No
 * route matching is 404, as in Envoy. The control plane emits routes already in the Gateway API's
 * precedence order, so the first match is the Gateway API's answer.
 *
 * <p>Regular expressions are compiled once per text and cached (bounded by the routes served).
 */
public final class EnvoyRoutes {
    private static final Map<String, Pattern> PATTERNS = new ConcurrentHashMap<>();

    private EnvoyRoutes() {}

    /** What the waypoint does with one request. */
    public sealed interface Decision {
        /**
         * Sends the request to {@code cluster}; {@code route} is the matched route's name, {@code matched}
         * the route itself (its response header edits, mirrors, retries), {@code backend} the chosen
         * cluster weight (its own header edits; the default instance for a single cluster), {@code
         * upstream} the request after the rewrites and header edits ({@link RouteActions#upstream}).
         */
        record Forward(String route, String cluster, RouteAction action, Route matched,
                WeightedCluster.ClusterWeight backend, RouteActions.Upstream upstream) implements Decision {}

        /** Answers {@code status} with {@code location} ({@link RouteActions#location}). */
        record Redirect(String route, int status, String location) implements Decision {}

        /** Answers {@code status} itself ({@code reason} for the log and the body). */
        record Respond(String route, int status, String reason) implements Decision {}
    }

    /** A request as routing sees it: method, path without query, raw query, lower-case header names. */
    public record Request(String method, String path, String query, Map<String, List<String>> headers) {
        public Request {
            requireNonNull(method, "method");
            requireNonNull(path, "path");
            requireNonNull(query, "query");
            headers = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(headers));
        }

        /** The value of header {@code name} (lower case): pseudo-headers {@code :method}, {@code :path}, {@code :authority} too. */
        public Optional<String> header(String name) {
            if (name.equals(":method")) {
                return Optional.of(method);
            }
            if (name.equals(":authority")) {
                return header("host");
            }
            if (name.equals(":path")) {
                return Optional.of(query.isEmpty() ? path : path + "?" + query);
            }
            List<String> v = headers.get(name);
            return v == null || v.isEmpty() ? Optional.empty() : Optional.of(String.join(",", v));
        }
    }

    /**
     * Decides {@code request} on {@code host}.
     *
     * @param draw a uniform random draw in [0, 1) for a weighted split
     */
    public static Decision decide(VirtualHost host, Request request, double draw) {
        requireNonNull(host, "host");
        requireNonNull(request, "request");
        for (Route r : host.getRoutesList()) {
            if (!matches(r.getMatch(), request)) {
                continue;
            }
            if (r.hasDirectResponse()) {
                return new Decision.Respond(r.getName(), r.getDirectResponse().getStatus(), "direct response");
            }
            if (r.hasRedirect()) {
                return new Decision.Redirect(r.getName(), RouteActions.redirectStatus(r.getRedirect()),
                        RouteActions.location(r, request, request.header("host").orElse("")));
            }
            if (!r.hasRoute()) {
                return new Decision.Respond(r.getName(), 501, "route action "
                        + r.getActionCase().name().toLowerCase(java.util.Locale.ROOT)
                        + " is not applied by the waypoint yet");
            }
            RouteAction a = r.getRoute();
            return switch (a.getClusterSpecifierCase()) {
                case CLUSTER -> forward(r, a.getCluster(), WeightedCluster.ClusterWeight.getDefaultInstance(),
                        request);
                case WEIGHTED_CLUSTERS -> weighted(r, request, draw);
                default -> new Decision.Respond(r.getName(), 500, "no cluster in route " + r.getName());
            };
        }
        return new Decision.Respond(null, 404, "no route matched");
    }

    private static Decision forward(Route r, String cluster, WeightedCluster.ClusterWeight backend,
            Request request) {
        return new Decision.Forward(r.getName(), cluster, r.getRoute(), r, backend,
                RouteActions.upstream(r, backend, request));
    }

    private static Decision weighted(Route r, Request request, double draw) {
        String route = r.getName();
        RouteAction a = r.getRoute();
        List<WeightedCluster.ClusterWeight> cs = a.getWeightedClusters().getClustersList();
        long total = 0;
        for (WeightedCluster.ClusterWeight c : cs) {
            total += c.getWeight().getValue();
        }
        if (total == 0) {
            return new Decision.Respond(route, 500, "every backend of route " + route + " has weight 0");
        }
        long pick = (long) (draw * total);
        for (WeightedCluster.ClusterWeight c : cs) {
            pick -= c.getWeight().getValue();
            if (pick < 0) {
                return forward(r, c.getName(), c, request);
            }
        }
        return forward(r, cs.getLast().getName(), cs.getLast(), request);
    }

    static boolean matches(RouteMatch m, Request r) {
        boolean path = switch (m.getPathSpecifierCase()) {
            case PREFIX -> r.path().startsWith(m.getPrefix());
            case PATH -> r.path().equals(m.getPath());
            case SAFE_REGEX -> pattern(m.getSafeRegex().getRegex()).matcher(r.path()).matches();
            default -> false;
        };
        if (!path) {
            return false;
        }
        for (HeaderMatcher h : m.getHeadersList()) {
            if (!header(h, r)) {
                return false;
            }
        }
        for (QueryParameterMatcher q : m.getQueryParametersList()) {
            Optional<String> v = query(r.query(), q.getName());
            boolean ok = q.hasStringMatch()
                    ? v.map(x -> string(q.getStringMatch(), x)).orElse(false)
                    : v.isPresent();
            if (!ok) {
                return false;
            }
        }
        return true;
    }

    /** Whether {@code r} matches {@code h}, its {@code invert_match} applied. */
    public static boolean header(HeaderMatcher h, Request r) {
        return header(h, r.header(h.getName())) != h.getInvertMatch();
    }

    private static boolean header(HeaderMatcher h, Optional<String> value) {
        if (h.hasPresentMatch()) {
            return value.isPresent() == h.getPresentMatch();
        }
        if (value.isEmpty()) {
            return false;
        }
        return h.hasStringMatch() ? string(h.getStringMatch(), value.get()) : true;
    }

    /** Envoy's string match of {@code v}: exact, prefix, suffix, contains, safe regex (whole value), ignore case. */
    public static boolean string(StringMatcher m, String v) {
        String value = m.getIgnoreCase() ? v.toLowerCase(java.util.Locale.ROOT) : v;
        return switch (m.getMatchPatternCase()) {
            case EXACT -> value.equals(lower(m, m.getExact()));
            case PREFIX -> value.startsWith(lower(m, m.getPrefix()));
            case SUFFIX -> value.endsWith(lower(m, m.getSuffix()));
            case CONTAINS -> value.contains(lower(m, m.getContains()));
            case SAFE_REGEX -> pattern(m.getSafeRegex().getRegex()).matcher(v).matches();
            default -> false;
        };
    }

    private static String lower(StringMatcher m, String s) {
        return m.getIgnoreCase() ? s.toLowerCase(java.util.Locale.ROOT) : s;
    }

    /** The first value of query parameter {@code name} in {@code query} (not decoded, as Envoy compares). */
    private static Optional<String> query(String query, String name) {
        for (String part : query.split("&")) {
            int eq = part.indexOf('=');
            String k = eq < 0 ? part : part.substring(0, eq);
            if (k.equals(name)) {
                return Optional.of(eq < 0 ? "" : part.substring(eq + 1));
            }
        }
        return Optional.empty();
    }

    static Pattern pattern(String regex) {
        return PATTERNS.computeIfAbsent(regex, Pattern::compile);
    }
}
