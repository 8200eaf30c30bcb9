package dev.wisp.controlplane.envoy;

import dev.wisp.controlplane.model.RouteParts.PathMatch;
import dev.wisp.controlplane.model.RouteParts.PathModifier;
import io.envoyproxy.envoy.config.route.v3.RouteMatch;
import io.envoyproxy.envoy.type.matcher.v3.RegexMatcher;
import java.util.List;

/**
 * One Envoy path match standing for (part of) a Gateway API path match. A PathPrefix {@code /a}
 * (whole segments) is two of them: the path {@code /a} exactly and the prefix {@code /a/}; the
 * prefix {@code /} is one. A {@code ReplacePrefixMatch} rewrite swaps what Envoy matched, so its
 * value depends on the form: after a prefix ending in {@code /} the replacement keeps that slash.
 *
 * @param type the Gateway API type this form came from
 * @param value the Envoy path, prefix or regular expression
 * @param slashPrefix whether this is a prefix form ending in {@code /}
 */
record PathForm(PathType type, String value, boolean slashPrefix) {
    enum PathType {
        PATH, PREFIX, REGEX
    }

    static List<PathForm> of(PathMatch m) {
        return switch (m.type()) {
            case EXACT -> List.of(new PathForm(PathType.PATH, m.value(), false));
            case REGULAR_EXPRESSION -> List.of(new PathForm(PathType.REGEX, m.value(), false));
            case PATH_PREFIX -> {
                String p = trim(m.value());
                yield p.isEmpty()
                        ? List.of(new PathForm(PathType.PREFIX, "/", true))
                        : List.of(new PathForm(PathType.PATH, p, false), new PathForm(PathType.PREFIX, p + "/", true));
            }
        };
    }

    RouteMatch.Builder match() {
        RouteMatch.Builder b = RouteMatch.newBuilder();
        return switch (type) {
            case PATH -> b.setPath(value);
            case PREFIX -> b.setPrefix(value);
            case REGEX -> b.setSafeRegex(RegexMatcher.newBuilder().setRegex(value));
        };
    }

    /** The Envoy {@code prefix_rewrite} for a {@code ReplacePrefixMatch} of {@code m.value()}. */
    String prefixRewrite(PathModifier m) {
        String r = trim(m.value());
        return slashPrefix ? r + "/" : r.isEmpty() ? "/" : r;
    }

    private static String trim(String prefix) {
        return prefix.endsWith("/") ? prefix.substring(0, prefix.length() - 1) : prefix;
    }
}
