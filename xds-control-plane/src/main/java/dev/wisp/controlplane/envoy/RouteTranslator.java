package dev.wisp.controlplane.envoy;

import dev.wisp.controlplane.model.GrpcRoute;
import dev.wisp.controlplane.model.HttpRoute;
import dev.wisp.controlplane.model.MeshModel;
import dev.wisp.controlplane.model.MeshObject;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.model.RouteParts.BackendRef;
import dev.wisp.controlplane.model.RouteParts.Filter;
import dev.wisp.controlplane.model.RouteParts.MatchType;
import dev.wisp.controlplane.model.RouteParts.ParentRef;
import dev.wisp.controlplane.model.RouteParts.Retry;
import dev.wisp.controlplane.model.RouteParts.StringMatch;
import dev.wisp.controlplane.model.RouteParts.Timeouts;
import dev.wisp.controlplane.model.ServiceDef;
import dev.wisp.controlplane.route.Precedence;
import io.envoyproxy.envoy.config.route.v3.DirectResponseAction;
import io.envoyproxy.envoy.config.route.v3.HeaderMatcher;
import io.envoyproxy.envoy.config.route.v3.QueryParameterMatcher;
import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.config.route.v3.RouteMatch;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.envoyproxy.envoy.type.matcher.v3.RegexMatcher;
import io.envoyproxy.envoy.type.matcher.v3.StringMatcher;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.Function;

/**
 * Translates the HTTPRoutes and GRPCRoutes attached to one service port (GAMMA) into an Envoy
 * {@link RouteConfiguration} with one virtual host (pure).
 *
 * <p>Envoy takes the first route that matches, so the matches are emitted in the Gateway API's
 * precedence ({@link Precedence}, the order the {@code RouteEngine} decides by). GRPCRoutes come first,
 * each also matching {@code content-type: application/grpc…}, followed by a 404 for the gRPC calls
 * none of them took (the two kinds are never merged); then the HTTPRoutes; with no route of a kind
 * attached, its requests go to the service itself. A PathPrefix becomes two Envoy routes (the exact
 * path and the path followed by {@code /}) so that it matches whole segments and stays within what
 * proxyless gRPC clients understand. Regular expressions are handed to Envoy as RE2, whose syntax
 * differs from Java's in rare constructs (backreferences, lookaround: the decoder's Java check
 * accepts them, RE2 does not).
 *
 * <p>Backend-level header modifiers go on the backend's cluster weight (a single backend with filters
 * becomes one weighted cluster) and {@code most_specific_header_mutations_wins} is set, so they apply
 * after the rule's, as in {@code RouteEngine}. Not translated, as the per-request {@code RouteEngine}
 * applies them only to the waypoint's own decisions: consumer routes (routes in the caller's
 * namespace: a route configuration is per service, not per caller), routes with {@code hostnames}
 * (left out), and backend-level filters other than header modifiers.
 */
final class RouteTranslator {
    private static final StringMatcher GRPC_CONTENT_TYPE = StringMatcher.newBuilder()
            .setSafeRegex(RegexMatcher.newBuilder().setRegex("application/grpc([+;].*)?"))
            .build();

    private final MeshModel model;
    private final String clusterDomain;

    RouteTranslator(MeshModel model) {
        this.model = model;
        this.clusterDomain = model.mesh().clusterDomain();
    }

    /** One attached match of one rule, in precedence order. */
    private record Entry<R>(R rule, ObjectRef route, Instant created, int ruleIndex, int matchIndex, int[] rank,
            Object match) {}

    RouteConfiguration routeConfiguration(ServiceDef svc, int port) {
        String name = EnvoyNames.listener(svc, port, clusterDomain);
        BackendActions actions = new BackendActions(model, svc, port);
        VirtualHost.Builder vh = VirtualHost.newBuilder().setName(name)
                .addAllDomains(EnvoyNames.domains(svc, port, clusterDomain));

        List<Entry<GrpcRoute.Rule>> grpc = entries(
                attached(model.all(GrpcRoute.class), svc, port, GrpcRoute::parents, GrpcRoute::hostnames),
                GrpcRoute::ref, GrpcRoute::created, GrpcRoute::rules, GrpcRoute.Rule::matches, Precedence::rank);
        for (Entry<GrpcRoute.Rule> e : grpc) {
            GrpcRoute.Match match = (GrpcRoute.Match) e.match();
            RouteMatch.Builder rm = grpcPath(match).addHeaders(header("content-type", GRPC_CONTENT_TYPE));
            match.headers().forEach(h -> rm.addHeaders(header(h.name(), string(h))));
            Route.Builder route = Route.newBuilder().setName(routeName(e)).setMatch(rm);
            actions.apply(route, e.rule().filters(), e.rule().backends(), Timeouts.NONE, null, null);
            vh.addRoutes(route);
        }
        if (!grpc.isEmpty()) {
            vh.addRoutes(Route.newBuilder().setName("grpc-no-route")
                    .setMatch(RouteMatch.newBuilder().setPrefix("/")
                            .addHeaders(header("content-type", GRPC_CONTENT_TYPE)))
                    .setDirectResponse(DirectResponseAction.newBuilder().setStatus(404)));
        }

        List<Entry<HttpRoute.Rule>> http = entries(
                attached(model.all(HttpRoute.class), svc, port, HttpRoute::parents, HttpRoute::hostnames),
                HttpRoute::ref, HttpRoute::created, HttpRoute::rules, HttpRoute.Rule::matches, Precedence::rank);
        for (Entry<HttpRoute.Rule> e : http) {
            HttpRoute.Match match = (HttpRoute.Match) e.match();
            HttpRoute.Rule rule = e.rule();
            for (PathForm form : PathForm.of(match.path())) {
                RouteMatch.Builder rm = form.match();
                if (match.method() != null) {
                    rm.addHeaders(header(":method", StringMatcher.newBuilder().setExact(match.method()).build()));
                }
                match.headers().forEach(h -> rm.addHeaders(header(h.name(), string(h))));
                match.query().forEach(q -> rm.addQueryParameters(
                        QueryParameterMatcher.newBuilder().setName(q.name()).setStringMatch(string(q))));
                Route.Builder route = Route.newBuilder().setName(routeName(e)).setMatch(rm);
                actions.apply(route, rule.filters(), rule.backends(), rule.timeouts(), rule.retry(), form);
                vh.addRoutes(route);
            }
        }
        if (http.isEmpty()) {
            Route.Builder route = Route.newBuilder().setName("default")
                    .setMatch(RouteMatch.newBuilder().setPrefix("/"));
            actions.apply(route, List.<Filter>of(), List.<BackendRef>of(), Timeouts.NONE, (Retry) null, null);
            vh.addRoutes(route);
        }
        // A backend's header modifiers (on its cluster weight) come after the rule's, as in RouteEngine.
        return RouteConfiguration.newBuilder().setName(name).setMostSpecificHeaderMutationsWins(true)
                .addVirtualHosts(vh).build();
    }

    /** Every match of every rule of {@code routes}, in precedence order. */
    private static <R, U, M> List<Entry<U>> entries(List<R> routes, Function<R, ObjectRef> ref,
            Function<R, Instant> created, Function<R, List<U>> rules, Function<U, List<M>> matches,
            Function<M, int[]> rank) {
        List<Entry<U>> out = new ArrayList<>();
        for (R r : routes) {
            List<U> rs = rules.apply(r);
            for (int i = 0; i < rs.size(); i++) {
                List<M> ms = matches.apply(rs.get(i));
                for (int m = 0; m < ms.size(); m++) {
                    out.add(new Entry<>(rs.get(i), ref.apply(r), created.apply(r), i, m, rank.apply(ms.get(m)),
                            ms.get(m)));
                }
            }
        }
        Comparator<Entry<U>> order = Precedence.order(Entry::rank, Entry::created, Entry::route, Entry::ruleIndex,
                Entry::matchIndex);
        out.sort(order);
        return out;
    }

    private static String routeName(Entry<?> e) {
        return e.route().kind() + "/" + e.route().qualifiedName() + "/rule/" + e.ruleIndex() + "/match/"
                + e.matchIndex();
    }

    /** The service's own (producer) routes attached to the port, without hostnames. */
    private static <R extends MeshObject> List<R> attached(List<R> routes, ServiceDef svc, int port,
            Function<R, List<ParentRef>> parents, Function<R, List<String>> hostnames) {
        List<R> out = new ArrayList<>();
        for (R r : routes) {
            boolean attaches = parents.apply(r).stream()
                    .anyMatch(p -> p.namespace().equals(svc.ref().namespace()) && p.name().equals(svc.ref().name())
                            && (p.port() == null || p.port() == port));
            if (attaches && r.ref().namespace().equals(svc.ref().namespace())
                    && hostnames.apply(r).isEmpty()) {
                out.add(r);
            }
        }
        return out;
    }

    /** A GRPCRoute method match as a path: {@code /service/method}, {@code /service/}, or a regex. */
    private static RouteMatch.Builder grpcPath(GrpcRoute.Match m) {
        RouteMatch.Builder b = RouteMatch.newBuilder();
        if (m.type() == MatchType.REGULAR_EXPRESSION) {
            String service = m.service() == null ? "[^/]+" : m.service();
            String method = m.method() == null ? "[^/]+" : m.method();
            return b.setSafeRegex(RegexMatcher.newBuilder().setRegex("/" + service + "/" + method));
        }
        if (m.service() != null && m.method() != null) {
            return b.setPath("/" + m.service() + "/" + m.method());
        }
        if (m.service() != null) {
            return b.setPrefix("/" + m.service() + "/");
        }
        if (m.method() != null) {
            return b.setSafeRegex(RegexMatcher.newBuilder().setRegex("/[^/]+/" + quote(m.method())));
        }
        return b.setPrefix("/");
    }

    static String quote(String literal) {
        return "\\Q" + literal.replace("\\E", "\\E\\\\E\\Q") + "\\E";
    }

    private static HeaderMatcher header(String name, StringMatcher m) {
        return HeaderMatcher.newBuilder().setName(name).setStringMatch(m).build();
    }

    private static StringMatcher string(StringMatch m) {
        return m.type() == MatchType.EXACT
                ? StringMatcher.newBuilder().setExact(m.value()).build()
                : StringMatcher.newBuilder().setSafeRegex(RegexMatcher.newBuilder().setRegex(m.value())).build();
    }
}
