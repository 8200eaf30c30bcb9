package dev.wisp.controlplane.route;

import dev.wisp.controlplane.model.RouteParts.HeaderModifier;
import dev.wisp.controlplane.model.RouteParts.PathModifier;
import dev.wisp.controlplane.model.RouteParts.Redirect;
import dev.wisp.controlplane.route.HttpRequest.Header;
import java.util.ArrayList;
import java.util.List;

/** The Gateway API filters' effect on a request (pure): header edits, path replacement, redirects. */
final class RequestFilters {
    private RequestFilters() {}

    /** {@code set} replaces every value of a name, {@code add} appends one, {@code remove} drops them. */
    static List<Header> modify(List<Header> headers, HeaderModifier m) {
        List<Header> out = new ArrayList<>();
        for (Header h : headers) {
            if (!m.set().containsKey(h.name()) && !m.remove().contains(h.name())) {
                out.add(h);
            }
        }
        m.set().forEach((n, v) -> out.add(new Header(n, v)));
        m.add().forEach((n, v) -> out.add(new Header(n, v)));
        return List.copyOf(out);
    }

    /**
     * The path after a ReplaceFullPath or ReplacePrefixMatch; {@code matchedPrefix} is the PathPrefix
     * the rule matched on. {@code /prefix/one} replaced by {@code /one} turns {@code /prefix/one/two}
     * into {@code /one/two}; replaced by {@code /}, {@code /strip/x} becomes {@code /x} and {@code /strip}
     * becomes {@code /}.
     */
    static String replacePath(String path, PathModifier m, String matchedPrefix) {
        if (m.fullPath()) {
            return m.value();
        }
        String rest = path.substring(Matching.trimPrefix(matchedPrefix).length());
        String replacement = m.value();
        if (replacement.endsWith("/") && rest.startsWith("/")) {
            rest = rest.substring(1);
        }
        String out = replacement + rest;
        return out.isEmpty() ? "/" : out;
    }

    /**
     * A redirect's {@code Location}. The scheme defaults to the request's ({@code http} in the mesh),
     * the host to the request's, the port to the scheme's well-known one when a scheme is given, else
     * the service port the request came to; no port is written for http:80 and https:443.
     */
    static String location(Redirect r, HttpRequest req, int servicePort, String matchedPrefix) {
        String scheme = r.scheme() == null ? "http" : r.scheme();
        String host = r.hostname() == null ? req.hostName() : r.hostname();
        int port;
        if (r.port() != null) {
            port = r.port();
        } else if (r.scheme() != null) {
            port = scheme.equals("https") ? 443 : 80;
        } else {
            port = servicePort;
        }
        boolean defaultPort = (scheme.equals("http") && port == 80) || (scheme.equals("https") && port == 443);
        String path = r.path() == null ? req.path() : replacePath(req.path(), r.path(), matchedPrefix);
        return scheme + "://" + host + (defaultPort ? "" : ":" + port) + path
                + (req.query().isEmpty() ? "" : "?" + req.query());
    }
}
