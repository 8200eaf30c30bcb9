package dev.wisp.controlplane.config;

import dev.wisp.controlplane.model.GrpcRoute;
import dev.wisp.controlplane.model.HttpRoute;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.model.RouteParts.BackendRef;
import dev.wisp.controlplane.model.RouteParts.Filter;
import dev.wisp.controlplane.model.RouteParts.MatchType;
import dev.wisp.controlplane.model.RouteParts.ParentRef;
import dev.wisp.controlplane.model.RouteParts.PathMatch;
import dev.wisp.controlplane.model.RouteParts.PathModifier;
import dev.wisp.controlplane.model.RouteParts.PathType;
import dev.wisp.controlplane.model.RouteParts.Redirect;
import dev.wisp.controlplane.model.RouteParts.Rewrite;
import dev.wisp.controlplane.model.RouteParts.StringMatch;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Decodes {@code HTTPRoute} and {@code GRPCRoute} (Gateway API v1, GAMMA mesh attachment) with the
 * API's own validation rules (limits, path and name syntax, which filters combine). Strict: an
 * unknown field is an error, since a misspelt match would otherwise send traffic elsewhere silently.
 * Filters, backends, timeouts and retries are read by {@link RouteFilterDecoder}.
 */
final class RouteDecoder {
    /** The Gateway API's list limits. */
    static final int MAX_RULES = 16;
    static final int MAX_MATCHES = 64;
    static final int MAX_HEADERS = 16;
    static final int MAX_PARENTS = 32;
    static final int MAX_REGEX = 1024;
    static final Pattern TOKEN = Pattern.compile("[A-Za-z0-9!#$%&'*+\\-.^_`|~]{1,256}");
    private static final Pattern HOSTNAME = Pattern
            .compile("(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");
    private static final Pattern GRPC_SERVICE = Pattern.compile("(?i)\\.?[a-z_][a-z_0-9]*(\\.[a-z_][a-z_0-9]*)*");
    private static final Pattern GRPC_METHOD = Pattern.compile("[A-Za-z_][A-Za-z_0-9]*");
    static final List<String> METHODS = List.of("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS",
            "TRACE", "PATCH");

    private RouteDecoder() {}

    static HttpRoute httpRoute(Fields f, YNode doc, ObjectRef ref) {
        YNode spec = head(f, doc);
        List<HttpRoute.Rule> rules = rules(f, spec, List.of("timeouts", "retry"), RouteDecoder::httpMatch,
                new HttpRoute.Match(PathMatch.DEFAULT, List.of(), List.of(), null), (r, path, matches) -> {
                    List<Filter> filters = RouteFilterDecoder.filters(f, r, path, true);
                    checkPathModifiers(f, r, path, filters, matches);
                    return new HttpRoute.Rule(matches, filters, RouteFilterDecoder.backends(f, r, path, ref, true),
                            RouteFilterDecoder.timeouts(f, r, path), RouteFilterDecoder.retry(f, r, path));
                });
        return new HttpRoute(ref, created(f, doc), parents(f, spec, ref), hostnames(f, spec), rules);
    }

    static GrpcRoute grpcRoute(Fields f, YNode doc, ObjectRef ref) {
        YNode spec = head(f, doc);
        List<GrpcRoute.Rule> rules = rules(f, spec, List.of(), RouteDecoder::grpcMatch, GrpcRoute.Match.ANY,
                (r, path, matches) -> new GrpcRoute.Rule(matches, RouteFilterDecoder.filters(f, r, path, false),
                        RouteFilterDecoder.backends(f, r, path, ref, false)));
        return new GrpcRoute(ref, created(f, doc), parents(f, spec, ref), hostnames(f, spec), rules);
    }

    /** Decodes one match of a rule at {@code path}. */
    private interface MatchDecoder<M> {
        M decode(Fields f, YNode match, String path);
    }

    /** Builds one rule from its node, its path and its decoded matches. */
    private interface RuleBuilder<M, R> {
        R build(YNode rule, String path, List<M> matches);
    }

    /**
     * {@code spec.rules} of an HTTPRoute or a GRPCRoute: each rule's fields checked ({@code extra}
     * beside the common ones), its matches decoded ({@code none} standing for an empty list, as the
     * Gateway API says), the rest left to {@code rule}.
     */
    private static <M, R> List<R> rules(Fields f, YNode spec, List<String> extra, MatchDecoder<M> match, M none,
            RuleBuilder<M, R> rule) {
        List<String> allowed = new ArrayList<>(List.of("name", "matches", "filters", "backendRefs"));
        allowed.addAll(extra);
        List<R> rules = new ArrayList<>();
        List<YNode> items = limited(f, spec, "rules", "spec.rules", MAX_RULES);
        for (int i = 0; i < items.size(); i++) {
            String path = "spec.rules[" + i + "]";
            YNode r = items.get(i);
            f.allowOnly(r, path, allowed.toArray(String[]::new));
            List<M> matches = new ArrayList<>();
            List<YNode> ms = limited(f, r, "matches", path + ".matches", MAX_MATCHES);
            for (int m = 0; m < ms.size(); m++) {
                matches.add(match.decode(f, ms.get(m), path + ".matches[" + m + "]"));
            }
            if (matches.isEmpty()) {
                matches.add(none);
            }
            rules.add(rule.build(r, path, List.copyOf(matches)));
        }
        return List.copyOf(rules);
    }

    private static YNode head(Fields f, YNode doc) {
        f.allowOnly(doc, "", "apiVersion", "kind", "metadata", "spec", "status");
        YNode spec = f.child(doc, "spec");
        f.allowOnly(spec, "spec", "parentRefs", "hostnames", "rules");
        return spec;
    }

    /** The list at {@code key}, with an error when it is longer than the Gateway API allows. */
    static List<YNode> limited(Fields f, YNode parent, String key, String path, int max) {
        List<YNode> items = f.list(parent, key, path);
        if (items.size() > max) {
            f.error(f.child(parent, key), path, "has " + items.size() + " entries; the Gateway API allows " + max);
            return items.subList(0, max);
        }
        return items;
    }

    private static Instant created(Fields f, YNode doc) {
        String ts = f.string(f.child(doc, "metadata"), "creationTimestamp", "metadata.creationTimestamp");
        if (ts == null) {
            return null;
        }
        try {
            return Instant.parse(ts);
        } catch (DateTimeParseException e) {
            f.error(f.child(f.child(doc, "metadata"), "creationTimestamp"), "metadata.creationTimestamp", "'" + ts
                    + "' is not an RFC 3339 time such as 2026-01-02T03:04:05Z");
            return null;
        }
    }

    private static List<ParentRef> parents(Fields f, YNode spec, ObjectRef ref) {
        List<ParentRef> out = new ArrayList<>();
        List<YNode> items = limited(f, spec, "parentRefs", "spec.parentRefs", MAX_PARENTS);
        if (items.isEmpty()) {
            f.error(spec, "spec.parentRefs", "required: the Service(s) whose traffic this route handles (kind: "
                    + "Service, group: \"\")");
        }
        for (int i = 0; i < items.size(); i++) {
            String path = "spec.parentRefs[" + i + "]";
            YNode p = items.get(i);
            f.allowOnly(p, path, "group", "kind", "namespace", "name", "port", "sectionName");
            String group = f.string(p, "group", path + ".group");
            String kind = f.string(p, "kind", path + ".kind");
            if (!"Service".equals(kind) || !(group == null || group.isEmpty() || group.equals("core"))) {
                f.error(p, path + ".kind", "'" + (group == null ? "gateway.networking.k8s.io" : group) + "/"
                        + (kind == null ? "Gateway" : kind) + "' is not a mesh parent: Wisp runs no ingress "
                        + "gateway; attach the route to a Service (kind: Service, group: \"\")");
                continue;
            }
            if (f.child(p, "sectionName") != null) {
                f.error(f.child(p, "sectionName"), path + ".sectionName", "not supported for a Service parent; "
                        + "use port");
            }
            String name = f.string(p, "name", path + ".name");
            if (name == null) {
                f.error(p, path + ".name", "required");
                continue;
            }
            String ns = f.string(p, "namespace", path + ".namespace");
            String portText = f.string(p, "port", path + ".port");
            Integer port = portText == null ? null : f.port(f.child(p, "port"), portText, path + ".port");
            out.add(new ParentRef(ns == null ? ref.namespace() : ns, name, port));
        }
        return List.copyOf(out);
    }

    private static List<String> hostnames(Fields f, YNode spec) {
        List<String> out = new ArrayList<>();
        List<String> names = f.strings(spec, "hostnames", "spec.hostnames");
        for (int i = 0; i < names.size(); i++) {
            String h = names.get(i).toLowerCase(Locale.ROOT);
            if (h.length() > 253 || !HOSTNAME.matcher(h).matches()) {
                f.error(f.child(spec, "hostnames"), "spec.hostnames[" + i + "]", "'" + names.get(i)
                        + "' is not a host name (an optional leading '*.' then DNS labels)");
            } else {
                out.add(h);
            }
        }
        return List.copyOf(out);
    }

    private static HttpRoute.Match httpMatch(Fields f, YNode m, String path) {
        f.allowOnly(m, path, "path", "headers", "queryParams", "method");
        PathMatch pm = PathMatch.DEFAULT;
        YNode p = f.child(m, "path");
        if (p != null) {
            f.allowOnly(p, path + ".path", "type", "value");
            String type = f.string(p, "type", path + ".path.type");
            String value = f.string(p, "value", path + ".path.value");
            PathType t = switch (type == null ? "PathPrefix" : type) {
                case "Exact" -> PathType.EXACT;
                case "PathPrefix" -> PathType.PATH_PREFIX;
                case "RegularExpression" -> PathType.REGULAR_EXPRESSION;
                default -> {
                    f.error(f.child(p, "type"), path + ".path.type", "'" + type
                            + "' is not one of Exact, PathPrefix, RegularExpression");
                    yield PathType.PATH_PREFIX;
                }
            };
            value = value == null ? "/" : value;
            if (t == PathType.REGULAR_EXPRESSION) {
                regex(f, p, value, path + ".path.value");
            } else {
                pathValue(f, p, value, path + ".path.value");
            }
            pm = new PathMatch(t, value);
        }
        List<StringMatch> headers = stringMatches(f, m, "headers", path, true);
        List<StringMatch> query = stringMatches(f, m, "queryParams", path, false);
        String method = f.string(m, "method", path + ".method");
        if (method != null && !METHODS.contains(method)) {
            f.error(f.child(m, "method"), path + ".method", "'" + method + "' is not one of "
                    + String.join(", ", METHODS));
        }
        return new HttpRoute.Match(pm, headers, query, method);
    }

    private static GrpcRoute.Match grpcMatch(Fields f, YNode m, String path) {
        f.allowOnly(m, path, "method", "headers");
        YNode method = f.child(m, "method");
        f.allowOnly(method, path + ".method", "type", "service", "method");
        String type = f.string(method, "type", path + ".method.type");
        MatchType t = matchType(f, method, type, path + ".method.type");
        String service = f.string(method, "service", path + ".method.service");
        String name = f.string(method, "method", path + ".method.method");
        if (method != null && service == null && name == null) {
            f.error(method, path + ".method", "needs service or method (or both)");
        }
        if (t == MatchType.EXACT) {
            if (service != null && !GRPC_SERVICE.matcher(service).matches()) {
                f.error(method, path + ".method.service", "'" + service + "' is not a gRPC service name");
            }
            if (name != null && !GRPC_METHOD.matcher(name).matches()) {
                f.error(method, path + ".method.method", "'" + name + "' is not a gRPC method name");
            }
        } else {
            for (String v : new String[]{service, name}) {
                if (v != null) {
                    regex(f, method, v, path + ".method");
                }
            }
        }
        return new GrpcRoute.Match(t, service, name, stringMatches(f, m, "headers", path, true));
    }

    private static MatchType matchType(Fields f, YNode at, String type, String path) {
        if (type == null || type.equals("Exact")) {
            return MatchType.EXACT;
        }
        if (type.equals("RegularExpression")) {
            return MatchType.REGULAR_EXPRESSION;
        }
        f.error(f.child(at, "type"), path, "'" + type + "' is not one of Exact, RegularExpression");
        return MatchType.EXACT;
    }

    /**
     * Header or query-parameter matches. As the API says, of entries with equivalent names only the
     * first counts (header names compare case-insensitively, query names exactly).
     */
    private static List<StringMatch> stringMatches(Fields f, YNode m, String key, String path, boolean header) {
        List<StringMatch> out = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        List<YNode> items = limited(f, m, key, path + "." + key, MAX_HEADERS);
        for (int i = 0; i < items.size(); i++) {
            String p = path + "." + key + "[" + i + "]";
            YNode h = items.get(i);
            f.allowOnly(h, p, "type", "name", "value");
            MatchType t = matchType(f, h, f.string(h, "type", p + ".type"), p + ".type");
            String name = f.string(h, "name", p + ".name");
            String value = f.string(h, "value", p + ".value");
            if (name == null || !TOKEN.matcher(name).matches()) {
                f.error(h, p + ".name", name == null ? "required" : "'" + name + "' is not a valid name");
                continue;
            }
            if (value == null) {
                f.error(h, p + ".value", "required");
                continue;
            }
            if (t == MatchType.REGULAR_EXPRESSION) {
                regex(f, h, value, p + ".value");
            }
            String n = header ? name.toLowerCase(Locale.ROOT) : name;
            if (seen.add(n)) {
                out.add(new StringMatch(t, n, value));
            }
        }
        return List.copyOf(out);
    }

    private static void regex(Fields f, YNode at, String value, String path) {
        if (value.length() > MAX_REGEX) {
            f.error(at, path, "a regular expression of " + value.length() + " characters; at most " + MAX_REGEX);
            return;
        }
        try {
            Pattern.compile(value);
        } catch (PatternSyntaxException e) {
            f.error(at, path, "'" + value + "' is not a regular expression: " + e.getDescription());
        }
    }

    /** An Exact or PathPrefix value, or a path replacement: absolute, no dot segments, no encoded '/'. */
    static void pathValue(Fields f, YNode at, String value, String path) {
        if (!value.startsWith("/") || value.length() > 1024) {
            f.error(at, path, "'" + value + "' must start with '/' (at most 1024 characters)");
            return;
        }
        for (String bad : List.of("//", "/./", "/../", "%2f", "%2F", "#")) {
            if (value.contains(bad)) {
                f.error(at, path, "'" + value + "' must not contain '" + bad + "'");
                return;
            }
        }
        if (value.endsWith("/..") || value.endsWith("/.")) {
            f.error(at, path, "'" + value + "' must not end with a dot segment");
        }
    }

    /** ReplacePrefixMatch replaces the matched prefix: every match of the rule must be a PathPrefix. */
    private static void checkPathModifiers(Fields f, YNode rule, String path, List<Filter> filters,
            List<HttpRoute.Match> matches) {
        for (Filter filter : filters) {
            PathModifier pm = switch (filter) {
                case Redirect r -> r.path();
                case Rewrite r -> r.path();
                default -> null;
            };
            if (pm != null && !pm.fullPath()
                    && matches.stream().anyMatch(m -> m.path().type() != PathType.PATH_PREFIX)) {
                f.error(f.child(rule, "filters"), path + ".filters", "ReplacePrefixMatch needs every match of the "
                        + "rule to be a PathPrefix match");
            }
        }
    }
}
