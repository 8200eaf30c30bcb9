package dev.wisp.waypoint.route;

import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.config.route.v3.RedirectAction;
import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.config.route.v3.RouteAction;
import io.envoyproxy.envoy.config.route.v3.RouteMatch;
import io.envoyproxy.envoy.config.route.v3.WeightedCluster;
import io.envoyproxy.envoy.type.v3.FractionalPercent;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import java.util.function.DoubleSupplier;
import java.util.function.Predicate;
import java.util.regex.Pattern;

/**
 * What a matched Envoy route does to a request, pure: the request header options and removals, the
 * path rewrite ({@code prefix_rewrite} of what the route matched, or {@code regex_rewrite}), the
 * host rewrite, a redirect's {@code Location}, the mirrors drawn, and the response header options.
 * The control plane writes these fields from the Gateway API filters; the results here are what
 * {@code wisp route check} prints for the same route and request (RouteEngine), which a table test
 * checks (the control plane's {@code WaypointAgreementTest}).
 */
public final class RouteActions {
    private RouteActions() {}

    /** Header edits on some header container (names lower-case), as its own set, add, remove and lookup. */
    public record Headers(BiConsumer<String, String> set, BiConsumer<String, String> add, Consumer<String> remove,
            Predicate<String> has) {}

    /**
     * The request as sent upstream.
     *
     * @param path the path and query
     * @param headers lower-case names, {@code host} included, in the order written
     */
    public record Upstream(String path, Map<String, List<String>> headers) {}

    /**
     * {@code route}'s rewrite and request header edits applied to {@code r}, then those of the chosen
     * cluster weight {@code backend} (the most specific last: the control plane sets {@code
     * most_specific_header_mutations_wins}, so a backend's modifiers come after the rule's, as in the
     * route engine).
     */
    public static Upstream upstream(Route route, WeightedCluster.ClusterWeight backend, EnvoyRoutes.Request r) {
        Map<String, List<String>> headers = new LinkedHashMap<>();
        r.headers().forEach((k, v) -> headers.put(k, new ArrayList<>(v)));
        edit(route.getRequestHeadersToAddList(), route.getRequestHeadersToRemoveList(), map(headers));
        edit(backend.getRequestHeadersToAddList(), backend.getRequestHeadersToRemoveList(), map(headers));
        RouteAction a = route.getRoute();
        String path = r.path();
        if (!a.getPrefixRewrite().isEmpty()) {
            path = a.getPrefixRewrite() + path.substring(matchedPrefix(route.getMatch(), path));
        } else if (a.hasRegexRewrite()) {
            path = pattern(a.getRegexRewrite().getPattern().getRegex()).matcher(path)
                    .replaceAll(substitution(a.getRegexRewrite().getSubstitution()));
        }
        if (!a.getHostRewriteLiteral().isEmpty()) {
            headers.put("host", new ArrayList<>(List.of(a.getHostRewriteLiteral())));
        }
        return new Upstream(withQuery(path, r.query()), headers);
    }

    /**
     * A redirect's {@code Location}: the scheme given, else {@code http} (plain HTTP inside the
     * tunnel); the host given, else the request's without its port; the port given, else the
     * request's; none written for http:80 and https:443; the path replaced whole or its matched
     * prefix replaced; the query kept.
     *
     * @param authority the request's {@code Host}
     */
    public static String location(Route route, EnvoyRoutes.Request r, String authority) {
        RedirectAction d = route.getRedirect();
        String scheme = d.getSchemeRedirect().isEmpty() ? "http" : d.getSchemeRedirect().toLowerCase(Locale.ROOT);
        int colon = authority.lastIndexOf(':');
        boolean hasPort = colon > authority.lastIndexOf(']') && colon >= 0;
        String host = d.getHostRedirect().isEmpty()
                ? (hasPort ? authority.substring(0, colon) : authority)
                : d.getHostRedirect();
        int port = d.getPortRedirect() != 0
                ? d.getPortRedirect()
                : hasPort ? Integer.parseInt(authority.substring(colon + 1)) : -1;
        boolean wellKnown = port < 0 || (scheme.equals("http") && port == 80)
                || (scheme.equals("https") && port == 443);
        String path = r.path();
        if (!d.getPathRedirect().isEmpty()) {
            path = d.getPathRedirect();
        } else if (!d.getPrefixRewrite().isEmpty()) {
            path = d.getPrefixRewrite() + path.substring(matchedPrefix(route.getMatch(), path));
        }
        return scheme + "://" + host + (wellKnown ? "" : ":" + port)
                + withQuery(path, d.getStripQuery() ? "" : r.query());
    }

    /** Envoy's redirect codes as HTTP statuses (301, 302, 303, 307, 308). */
    public static int redirectStatus(RedirectAction d) {
        return switch (d.getResponseCode()) {
            case MOVED_PERMANENTLY -> 301;
            case SEE_OTHER -> 303;
            case TEMPORARY_REDIRECT -> 307;
            case PERMANENT_REDIRECT -> 308;
            default -> 302;
        };
    }

    /** The clusters a copy of the request goes to: each mirror policy whose fraction the draw falls under. */
    public static List<String> mirrors(RouteAction a, DoubleSupplier draw) {
        List<String> out = new ArrayList<>();
        for (RouteAction.RequestMirrorPolicy m : a.getRequestMirrorPoliciesList()) {
            double share = m.hasRuntimeFraction() ? share(m.getRuntimeFraction().getDefaultValue()) : 1.0;
            if (draw.getAsDouble() < share) {
                out.add(m.getCluster());
            }
        }
        return out;
    }

    /**
     * {@code route}'s per-route configuration of {@code filter} as a {@code type}, or null when it has
     * none (or one of another type, or one that does not parse: the filter is then not applied).
     */
    static <T extends com.google.protobuf.Message> T perFilter(Route route, String filter, Class<T> type) {
        com.google.protobuf.Any config = route.getTypedPerFilterConfigMap().get(filter);
        if (config == null || !config.is(type)) {
            return null;
        }
        try {
            return config.unpack(type);
        } catch (com.google.protobuf.InvalidProtocolBufferException e) {
            return null;
        }
    }

    /** A fractional percent as a share in [0, 1]. */
    static double share(FractionalPercent f) {
        int scale = switch (f.getDenominator()) {
            case TEN_THOUSAND -> 10_000;
            case MILLION -> 1_000_000;
            default -> 100;
        };
        return (double) f.getNumerator() / scale;
    }

    /** {@code route}'s response header options and removals applied to {@code headers}, then {@code backend}'s. */
    public static void response(Route route, WeightedCluster.ClusterWeight backend, Headers headers) {
        edit(route.getResponseHeadersToAddList(), route.getResponseHeadersToRemoveList(), headers);
        edit(backend.getResponseHeadersToAddList(), backend.getResponseHeadersToRemoveList(), headers);
    }

    /** Removals first, then each option by its append action, as Envoy evaluates them. */
    public static void edit(List<HeaderValueOption> options, List<String> remove, Headers h) {
        remove.forEach(n -> h.remove().accept(n.toLowerCase(Locale.ROOT)));
        for (HeaderValueOption o : options) {
            String name = o.getHeader().getKey().toLowerCase(Locale.ROOT);
            String value = o.getHeader().getValue();
            switch (o.getAppendAction()) {
                case OVERWRITE_IF_EXISTS_OR_ADD -> h.set().accept(name, value);
                case ADD_IF_ABSENT -> {
                    if (!h.has().test(name)) {
                        h.add().accept(name, value);
                    }
                }
                case OVERWRITE_IF_EXISTS -> {
                    if (h.has().test(name)) {
                        h.set().accept(name, value);
                    }
                }
                default -> h.add().accept(name, value);
            }
        }
    }

    /** {@link Headers} over a map of lower-case names to values. */
    public static Headers map(Map<String, List<String>> m) {
        return new Headers((n, v) -> m.put(n, new ArrayList<>(List.of(v))),
                (n, v) -> m.computeIfAbsent(n, k -> new ArrayList<>()).add(v), m::remove, m::containsKey);
    }

    /** How many characters of {@code path} the route's path match covered (a prefix, or the whole path). */
    private static int matchedPrefix(RouteMatch m, String path) {
        return switch (m.getPathSpecifierCase()) {
            case PREFIX -> m.getPrefix().length();
            default -> path.length();
        };
    }

    /** An RE2 substitution as Java's: {@code \1} a group, {@code \\} a backslash, everything else literal. */
    private static String substitution(String s) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char ch = s.charAt(i);
            if (ch == '\\' && i + 1 < s.length() && Character.isDigit(s.charAt(i + 1))) {
                out.append('$').append(s.charAt(++i));
            } else if (ch == '\\' && i + 1 < s.length() && s.charAt(i + 1) == '\\') {
                out.append("\\\\");
                i++;
            } else {
                out.append(ch == '$' ? "\\$" : ch == '\\' ? "\\\\" : String.valueOf(ch));
            }
        }
        return out.toString();
    }

    private static Pattern pattern(String regex) {
        return EnvoyRoutes.pattern(regex);
    }

    private static String withQuery(String path, String query) {
        return query.isEmpty() ? path : path + "?" + query;
    }
}
