package dev.wisp.controlplane.route;

import dev.wisp.controlplane.model.GrpcRoute;
import dev.wisp.controlplane.model.HttpRoute;
import dev.wisp.controlplane.model.RouteParts.MatchType;
import dev.wisp.controlplane.model.RouteParts.PathMatch;
import dev.wisp.controlplane.model.RouteParts.StringMatch;
import dev.wisp.controlplane.route.HttpRequest.Header;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * Whether one Gateway API match accepts a request (pure). Regular expressions use Java's syntax and
 * must match the whole value; they were compiled once at decoding, and are cached here by text.
 */
final class Matching {
    private static final Map<String, Pattern> PATTERNS = new ConcurrentHashMap<>();

    private Matching() {}

    static boolean matches(HttpRoute.Match m, HttpRequest req) {
        return path(m.path(), req.path()) && (m.method() == null || m.method().equals(req.method()))
                && headers(m.headers(), req.headers()) && query(m.query(), req.query());
    }

    /** A gRPC call is {@code POST /<service>/<method>}. */
    static boolean matches(GrpcRoute.Match m, HttpRequest req) {
        String p = req.path();
        int slash = p.indexOf('/', 1);
        if (!p.startsWith("/") || slash < 0) {
            return false;
        }
        String service = p.substring(1, slash);
        String method = p.substring(slash + 1);
        return value(m.type(), m.service(), service) && value(m.type(), m.method(), method)
                && headers(m.headers(), req.headers());
    }

    /** Exact, PathPrefix (whole segments; a trailing '/' of the prefix is ignored) or a whole-path regex. */
    static boolean path(PathMatch m, String path) {
        return switch (m.type()) {
            case EXACT -> path.equals(m.value());
            case PATH_PREFIX -> {
                String prefix = trimPrefix(m.value());
                yield prefix.isEmpty() || path.equals(prefix)
                        || (path.startsWith(prefix) && path.charAt(prefix.length()) == '/');
            }
            case REGULAR_EXPRESSION -> pattern(m.value()).matcher(path).matches();
        };
    }

    /** A prefix without its trailing '/' ({@code /} becomes empty: every path). */
    static String trimPrefix(String prefix) {
        return prefix.endsWith("/") ? prefix.substring(0, prefix.length() - 1) : prefix;
    }

    private static boolean value(MatchType type, String expected, String actual) {
        if (expected == null) {
            return true;
        }
        return type == MatchType.EXACT ? expected.equals(actual) : pattern(expected).matcher(actual).matches();
    }

    /** Header names were lower-cased on both sides; a header sent twice matches when either value does. */
    private static boolean headers(List<StringMatch> ms, List<Header> headers) {
        for (StringMatch m : ms) {
            boolean any = false;
            for (Header h : headers) {
                if (h.name().equals(m.name()) && value(m.type(), m.value(), h.value())) {
                    any = true;
                    break;
                }
            }
            if (!any) {
                return false;
            }
        }
        return true;
    }

    /** Names compare exactly, values after percent-decoding; of a repeated parameter the first counts. */
    private static boolean query(List<StringMatch> ms, String query) {
        for (StringMatch m : ms) {
            String v = firstParameter(query, m.name());
            if (v == null || !value(m.type(), m.value(), v)) {
                return false;
            }
        }
        return true;
    }

    static String firstParameter(String query, String name) {
        if (query.isEmpty()) {
            return null;
        }
        for (String pair : query.split("&", -1)) {
            int eq = pair.indexOf('=');
            String n = decode(eq < 0 ? pair : pair.substring(0, eq));
            if (n != null && n.equals(name)) {
                return eq < 0 ? "" : decode(pair.substring(eq + 1));
            }
        }
        return null;
    }

    private static String decode(String s) {
        try {
            return URLDecoder.decode(s, StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    private static Pattern pattern(String regex) {
        return PATTERNS.computeIfAbsent(regex, Pattern::compile);
    }
}
