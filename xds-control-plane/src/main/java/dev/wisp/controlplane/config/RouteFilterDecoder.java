package dev.wisp.controlplane.config;

import dev.wisp.controlplane.model.HttpFault;
import dev.wisp.controlplane.model.LocalRateLimit;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.model.RouteParts.BackendRef;
import dev.wisp.controlplane.model.RouteParts.ExtensionRef;
import dev.wisp.controlplane.model.RouteParts.Filter;
import dev.wisp.controlplane.model.RouteParts.HeaderModifier;
import dev.wisp.controlplane.model.RouteParts.Mirror;
import dev.wisp.controlplane.model.RouteParts.PathModifier;
import dev.wisp.controlplane.model.RouteParts.Redirect;
import dev.wisp.controlplane.model.RouteParts.Retry;
import dev.wisp.controlplane.model.RouteParts.Rewrite;
import dev.wisp.controlplane.model.RouteParts.Timeouts;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Decodes the action half of a route rule: filters, backendRefs, {@code timeouts} and GEP-1731
 * {@code retry}, with the Gateway API's rules on which filters combine.
 */
final class RouteFilterDecoder {
    private static final int MAX_FILTERS = 16;
    private static final int MAX_BACKENDS = 16;
    private static final int MAX_WEIGHT = 1_000_000;
    /** Gateway API durations: 1 to 4 parts of up to 5 digits with h, m, s or ms. */
    private static final Pattern DURATION = Pattern.compile("([0-9]{1,5}(h|m|s|ms)){1,4}");
    private static final Pattern DURATION_PART = Pattern.compile("([0-9]{1,5})(h|ms|m|s)");
    /**
     * Filter types each rule may hold at most once (RequestMirror may repeat; ExtensionRef once per
     * kind it names).
     */
    private static final Set<String> ONCE = Set.of("RequestHeaderModifier", "ResponseHeaderModifier",
            "RequestRedirect", "URLRewrite");
    /** The Wisp kinds an ExtensionRef filter may name. */
    private static final List<String> EXTENSION_KINDS = List.of(HttpFault.KIND, LocalRateLimit.KIND);

    private RouteFilterDecoder() {}

    /** {@code filters} of a rule ({@code http}: an HTTPRoute's set, else a GRPCRoute's). */
    static List<Filter> filters(Fields f, YNode parent, String path, boolean http) {
        List<Filter> out = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        List<YNode> items = RouteDecoder.limited(f, parent, "filters", path + ".filters", MAX_FILTERS);
        for (int i = 0; i < items.size(); i++) {
            String p = path + ".filters[" + i + "]";
            YNode item = items.get(i);
            String type = f.string(item, "type", p + ".type");
            if (type == null) {
                f.error(item, p + ".type", "required");
                continue;
            }
            if (ONCE.contains(type) && !seen.add(type)) {
                f.error(item, p + ".type", type + " may appear once per rule");
            }
            Filter filter = filter(f, item, p, type, http);
            if (filter instanceof ExtensionRef e && !seen.add(type + "/" + e.kind())) {
                f.error(item, p + ".type", "an ExtensionRef to a " + e.kind() + " may appear once per rule");
            }
            if (filter != null) {
                out.add(filter);
            }
        }
        if (seen.contains("RequestRedirect") && seen.contains("URLRewrite")) {
            f.error(f.child(parent, "filters"), path + ".filters", "RequestRedirect and URLRewrite cannot be combined");
        }
        return List.copyOf(out);
    }

    private static Filter filter(Fields f, YNode item, String p, String type, boolean http) {
        String field = switch (type) {
            case "RequestHeaderModifier" -> "requestHeaderModifier";
            case "ResponseHeaderModifier" -> "responseHeaderModifier";
            case "RequestRedirect" -> http ? "requestRedirect" : null;
            case "URLRewrite" -> http ? "urlRewrite" : null;
            case "RequestMirror" -> "requestMirror";
            case "ExtensionRef" -> "extensionRef";
            default -> null;
        };
        if (field == null) {
            f.error(f.child(item, "type"), p + ".type", "'" + type + "' is not one of RequestHeaderModifier, "
                    + "ResponseHeaderModifier, " + (http ? "RequestRedirect, URLRewrite, " : "")
                    + "RequestMirror, ExtensionRef");
            return null;
        }
        f.allowOnly(item, p, "type", field);
        YNode body = f.child(item, field);
        if (body == null || !body.isMap()) {
            f.error(item, p + "." + field, "required for type " + type);
            return null;
        }
        String bp = p + "." + field;
        return switch (type) {
            case "RequestHeaderModifier" -> headerModifier(f, body, bp, false);
            case "ResponseHeaderModifier" -> headerModifier(f, body, bp, true);
            case "RequestRedirect" -> redirect(f, body, bp);
            case "URLRewrite" -> rewrite(f, body, bp);
            case "ExtensionRef" -> extensionRef(f, body, bp);
            default -> mirror(f, body, bp);
        };
    }

    /** An {@code extensionRef} to a Wisp kind in the route's namespace: an HTTPFault or a LocalRateLimit. */
    private static ExtensionRef extensionRef(Fields f, YNode body, String path) {
        f.allowOnly(body, path, "group", "kind", "name");
        String group = f.string(body, "group", path + ".group");
        String kind = f.string(body, "kind", path + ".kind");
        String name = f.string(body, "name", path + ".name");
        boolean ok = true;
        if (!HttpFault.GROUP.equals(group)) {
            f.error(body, path + ".group", (group == null ? "required" : "'" + group + "' is not") + " "
                    + HttpFault.GROUP);
            ok = false;
        }
        if (!EXTENSION_KINDS.contains(kind)) {
            f.error(body, path + ".kind", (kind == null ? "required" : "'" + kind + "' is not") + " one of "
                    + String.join(", ", EXTENSION_KINDS));
            ok = false;
        }
        if (name == null || !ConfigDecoder.DNS_SUBDOMAIN.matcher(name).matches()) {
            f.error(body, path + ".name", name == null ? "required" : "'" + name + "' is not an object name");
            ok = false;
        }
        return ok ? new ExtensionRef(kind, name) : null;
    }

    private static HeaderModifier headerModifier(Fields f, YNode body, String path, boolean response) {
        f.allowOnly(body, path, "set", "add", "remove");
        Set<String> names = new HashSet<>();
        Map<String, String> set = headerValues(f, body, "set", path, names);
        Map<String, String> add = headerValues(f, body, "add", path, names);
        List<String> remove = new ArrayList<>();
        List<String> rs = f.strings(body, "remove", path + ".remove");
        for (int i = 0; i < rs.size(); i++) {
            String n = headerName(f, body, rs.get(i), path + ".remove[" + i + "]", names);
            if (n != null) {
                remove.add(n);
            }
        }
        return new HeaderModifier(response, set, add, List.copyOf(remove));
    }

    private static Map<String, String> headerValues(Fields f, YNode body, String key, String path, Set<String> names) {
        Map<String, String> out = new LinkedHashMap<>();
        List<YNode> items = RouteDecoder.limited(f, body, key, path + "." + key, RouteDecoder.MAX_HEADERS);
        for (int i = 0; i < items.size(); i++) {
            String p = path + "." + key + "[" + i + "]";
            f.allowOnly(items.get(i), p, "name", "value");
            String name = f.string(items.get(i), "name", p + ".name");
            String value = f.string(items.get(i), "value", p + ".value");
            if (name == null || value == null) {
                f.error(items.get(i), p, "needs name and value");
                continue;
            }
            if (value.chars().anyMatch(c -> c == '\r' || c == '\n' || c == 0)) {
                f.error(items.get(i), p + ".value", "a header value cannot hold CR, LF or NUL");
                continue;
            }
            String n = headerName(f, items.get(i), name, p + ".name", names);
            if (n != null) {
                out.put(n, value);
            }
        }
        return Map.copyOf(out);
    }

    /** A valid header name, lower-cased; an error when invalid or named twice in one modifier. */
    private static String headerName(Fields f, YNode at, String name, String path, Set<String> names) {
        if (!RouteDecoder.TOKEN.matcher(name).matches()) {
            f.error(at, path, "'" + name + "' is not a valid header name");
            return null;
        }
        String n = name.toLowerCase(Locale.ROOT);
        if (!names.add(n)) {
            f.error(at, path, "'" + name + "' is named twice in this modifier (set, add and remove)");
            return null;
        }
        return n;
    }

    private static Redirect redirect(Fields f, YNode body, String path) {
        f.allowOnly(body, path, "scheme", "hostname", "path", "port", "statusCode");
        String scheme = f.string(body, "scheme", path + ".scheme");
        if (scheme != null && !scheme.equals("http") && !scheme.equals("https")) {
            f.error(f.child(body, "scheme"), path + ".scheme", "'" + scheme + "' is not http or https");
        }
        String portText = f.string(body, "port", path + ".port");
        Integer port = portText == null ? null : f.port(f.child(body, "port"), portText, path + ".port");
        String code = f.string(body, "statusCode", path + ".statusCode");
        int status = 302;
        if (code != null) {
            if (code.equals("301") || code.equals("302")) {
                status = Integer.parseInt(code);
            } else {
                f.error(f.child(body, "statusCode"), path + ".statusCode", "'" + code + "' is not 301 or 302");
            }
        }
        return new Redirect(scheme, hostname(f, body, path), port, pathModifier(f, body, path), status);
    }

    private static Rewrite rewrite(Fields f, YNode body, String path) {
        f.allowOnly(body, path, "hostname", "path");
        return new Rewrite(hostname(f, body, path), pathModifier(f, body, path));
    }

    private static String hostname(Fields f, YNode body, String path) {
        String h = f.string(body, "hostname", path + ".hostname");
        if (h != null && !ConfigDecoder.DNS_SUBDOMAIN.matcher(h).matches()) {
            f.error(f.child(body, "hostname"), path + ".hostname", "'" + h + "' is not a host name");
        }
        return h;
    }

    private static PathModifier pathModifier(Fields f, YNode body, String path) {
        YNode p = f.child(body, "path");
        if (p == null) {
            return null;
        }
        String pp = path + ".path";
        f.allowOnly(p, pp, "type", "replaceFullPath", "replacePrefixMatch");
        String type = f.string(p, "type", pp + ".type");
        boolean full = "ReplaceFullPath".equals(type);
        if (!full && !"ReplacePrefixMatch".equals(type)) {
            f.error(p, pp + ".type", (type == null ? "required" : "'" + type + "' is not")
                    + " one of ReplaceFullPath, ReplacePrefixMatch");
            return null;
        }
        String key = full ? "replaceFullPath" : "replacePrefixMatch";
        f.allowOnly(p, pp, "type", key);
        String value = f.string(p, key, pp + "." + key);
        if (value == null) {
            f.error(p, pp + "." + key, "required for type " + type);
            return null;
        }
        RouteDecoder.pathValue(f, p, value, pp + "." + key);
        return new PathModifier(full, value);
    }

    private static Mirror mirror(Fields f, YNode body, String path) {
        f.allowOnly(body, path, "backendRef", "percent");
        YNode ref = f.child(body, "backendRef");
        if (ref == null) {
            f.error(body, path + ".backendRef", "required");
            return null;
        }
        String percentText = f.string(body, "percent", path + ".percent");
        int percent = 100;
        if (percentText != null) {
            percent = integer(f, f.child(body, "percent"), percentText, path + ".percent", 0, 100);
        }
        BackendRef b = backend(f, ref, path + ".backendRef", f.object(), false, false);
        return b == null ? null : new Mirror(b, percent);
    }

    /** {@code backendRefs} of a rule. */
    static List<BackendRef> backends(Fields f, YNode rule, String path, ObjectRef route, boolean http) {
        List<BackendRef> out = new ArrayList<>();
        List<YNode> items = RouteDecoder.limited(f, rule, "backendRefs", path + ".backendRefs", MAX_BACKENDS);
        for (int i = 0; i < items.size(); i++) {
            BackendRef b = backend(f, items.get(i), path + ".backendRefs[" + i + "]", route, true, http);
            if (b != null) {
                out.add(b);
            }
        }
        return List.copyOf(out);
    }

    private static BackendRef backend(Fields f, YNode b, String path, ObjectRef route, boolean weighted,
            boolean http) {
        if (weighted) {
            f.allowOnly(b, path, "group", "kind", "name", "namespace", "port", "weight", "filters");
        } else {
            f.allowOnly(b, path, "group", "kind", "name", "namespace", "port");
        }
        String group = f.string(b, "group", path + ".group");
        String kind = f.string(b, "kind", path + ".kind");
        String name = f.string(b, "name", path + ".name");
        if (name == null) {
            f.error(b, path + ".name", "required");
            return null;
        }
        String ns = f.string(b, "namespace", path + ".namespace");
        String fullKind = (group == null ? "" : group) + "/" + (kind == null ? "Service" : kind);
        String portText = f.string(b, "port", path + ".port");
        int port = 0;
        if (portText != null) {
            port = f.port(f.child(b, "port"), portText, path + ".port");
        } else if (fullKind.equals(BackendRef.SERVICE)) {
            f.error(b, path + ".port", "required for a Service backend");
        }
        int weight = 1;
        String w = f.string(b, "weight", path + ".weight");
        if (w != null) {
            weight = integer(f, f.child(b, "weight"), w, path + ".weight", 0, MAX_WEIGHT);
        }
        List<Filter> filters = weighted ? filters(f, b, path, http) : List.of();
        if (filters.stream().anyMatch(ExtensionRef.class::isInstance)) {
            f.error(b, path + ".filters", "an ExtensionRef filter applies to a whole rule, not to one backend");
        }
        return new BackendRef(fullKind, ns == null ? route.namespace() : ns, name, port, weight, filters);
    }

    /** {@code timeouts} of an HTTPRoute rule; {@code backendRequest} may not exceed {@code request}. */
    static Timeouts timeouts(Fields f, YNode rule, String path) {
        YNode t = f.child(rule, "timeouts");
        if (t == null) {
            return Timeouts.NONE;
        }
        f.allowOnly(t, path + ".timeouts", "request", "backendRequest");
        Duration request = duration(f, t, "request", path + ".timeouts.request");
        Duration backend = duration(f, t, "backendRequest", path + ".timeouts.backendRequest");
        if (request != null && backend != null && !request.isZero()
                && (backend.isZero() || backend.compareTo(request) > 0)) {
            f.error(t, path + ".timeouts.backendRequest", "must not be longer than timeouts.request");
        }
        return new Timeouts(request, backend);
    }

    /** GEP-1731 {@code retry}: codes 400-599, attempts ≥ 0, a backoff duration. */
    static Retry retry(Fields f, YNode rule, String path) {
        YNode r = f.child(rule, "retry");
        if (r == null) {
            return null;
        }
        String p = path + ".retry";
        f.allowOnly(r, p, "codes", "attempts", "backoff");
        List<Integer> codes = new ArrayList<>();
        List<String> cs = f.strings(r, "codes", p + ".codes");
        for (int i = 0; i < cs.size(); i++) {
            codes.add(integer(f, f.child(r, "codes"), cs.get(i), p + ".codes[" + i + "]", 400, 599));
        }
        String attemptsText = f.string(r, "attempts", p + ".attempts");
        Integer attempts = attemptsText == null
                ? null
                : integer(f, f.child(r, "attempts"), attemptsText, p + ".attempts", 0, 100);
        return new Retry(List.copyOf(codes), attempts, duration(f, r, "backoff", p + ".backoff"));
    }

    static Duration duration(Fields f, YNode parent, String key, String path) {
        String s = f.string(parent, key, path);
        if (s == null) {
            return null;
        }
        if (!DURATION.matcher(s).matches()) {
            f.error(f.child(parent, key), path,
                    "'" + s + "' is not a Gateway API duration such as 500ms, 10s or 1m30s");
            return null;
        }
        Duration d = Duration.ZERO;
        Matcher m = DURATION_PART.matcher(s);
        while (m.find()) {
            long n = Long.parseLong(m.group(1));
            d = d.plus(switch (m.group(2)) {
                case "h" -> Duration.ofHours(n);
                case "m" -> Duration.ofMinutes(n);
                case "s" -> Duration.ofSeconds(n);
                default -> Duration.ofMillis(n);
            });
        }
        return d;
    }

    static int integer(Fields f, YNode at, String text, String path, int min, int max) {
        try {
            int v = Integer.parseInt(text.trim());
            if (v >= min && v <= max) {
                return v;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        f.error(at, path, "'" + text + "' is not a whole number from " + min + " to " + max);
        return min;
    }
}
