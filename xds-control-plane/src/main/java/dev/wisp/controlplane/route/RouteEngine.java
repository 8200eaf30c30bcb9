package dev.wisp.controlplane.route;

import static java.util.Objects.requireNonNull;

import dev.wisp.controlplane.model.GrpcRoute;
import dev.wisp.controlplane.model.HttpFault;
import dev.wisp.controlplane.model.HttpRoute;
import dev.wisp.controlplane.model.LocalRateLimit;
import dev.wisp.controlplane.model.MeshModel;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.model.Pod;
import dev.wisp.controlplane.model.RouteParts.BackendRef;
import dev.wisp.controlplane.model.RouteParts.ExtensionRef;
import dev.wisp.controlplane.model.RouteParts.Filter;
import dev.wisp.controlplane.model.RouteParts.HeaderModifier;
import dev.wisp.controlplane.model.RouteParts.Mirror;
import dev.wisp.controlplane.model.RouteParts.Redirect;
import dev.wisp.controlplane.model.RouteParts.Retry;
import dev.wisp.controlplane.model.RouteParts.Rewrite;
import dev.wisp.controlplane.model.RouteParts.RouteRule;
import dev.wisp.controlplane.model.RouteParts.ServiceRoute;
import dev.wisp.controlplane.model.RouteParts.Timeouts;
import dev.wisp.controlplane.model.ServiceDef;
import dev.wisp.controlplane.model.ServiceEndpoints;
import dev.wisp.controlplane.route.HttpRequest.Header;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiPredicate;
import java.util.function.Function;
import java.util.random.RandomGenerator;

/**
 * The Gateway API route engine for mesh (GAMMA) traffic: which HTTPRoute or GRPCRoute rule a request
 * to a service port takes, what its filters do, and which backend it goes to. Pure: a function of an
 * immutable model, the request and a random source for weighted choices; immutable and safe to share
 * between threads.
 *
 * <p>Decisions, in the API's words where it has them: routes attach by {@code parentRefs} of kind
 * Service (all ports, or the one named); a route in the service's namespace applies to every caller,
 * one in another namespace only to callers there, and such consumer routes replace the producer's; a
 * gRPC request ({@code content-type: application/grpc…}) takes the GRPCRoutes attached to the port
 * when there are any, every other request the HTTPRoutes, never a mix; with no route attached the
 * request goes to the service itself. Hostnames narrow routes and the most specific hostname wins
 * before the per-kind precedence; a rule without backendRefs goes to its parent service. The API
 * leaves the rank of RegularExpression paths to implementations: here they come after Exact and
 * before every PathPrefix (as an operator who wrote one expects it to beat the catch-all {@code /}).
 */
public final class RouteEngine {
    /** Precedence: larger rank first, then the older route, then "namespace/name", then rule and match order. */
    private static final Comparator<Candidate> PRECEDENCE = Precedence.order(Candidate::rank, Candidate::created,
            Candidate::route, Candidate::rule, Candidate::match);

    private final Map<String, ServiceDef> services = new HashMap<>();
    private final Map<String, Integer> readyEndpoints = new HashMap<>();
    private final Map<ObjectRef, HttpFault> faults = new HashMap<>();
    private final Map<ObjectRef, LocalRateLimit> limits = new HashMap<>();
    private final List<HttpRoute> httpRoutes;
    private final List<GrpcRoute> grpcRoutes;

    private RouteEngine(MeshModel model) {
        ServiceEndpoints endpoints = ServiceEndpoints.of(model);
        for (ServiceDef s : model.all(ServiceDef.class)) {
            services.put(s.ref().qualifiedName(), s);
            int ready = 0;
            for (Pod p : model.all(Pod.class)) {
                if (p.ready() && !p.ips().isEmpty() && endpoints.ports(s, p).isPresent()) {
                    ready++;
                }
            }
            readyEndpoints.put(s.ref().qualifiedName(), ready);
        }
        this.httpRoutes = model.all(HttpRoute.class);
        this.grpcRoutes = model.all(GrpcRoute.class);
        model.all(HttpFault.class).forEach(f -> faults.put(f.ref(), f));
        model.all(LocalRateLimit.class).forEach(l -> limits.put(l.ref(), l));
    }

    public static RouteEngine of(MeshModel model) {
        return new RouteEngine(requireNonNull(model, "model"));
    }

    /** A request's destination: a service port, as the client's node agent tunnels it to the waypoint. */
    public record Target(String namespace, String service, int port) {
        @Override
        public String toString() {
            return namespace + "/" + service + ":" + port;
        }
    }

    /**
     * Decides what happens to {@code req} sent to {@code target}.
     *
     * @param callerNamespace the client's namespace (consumer routes), or null when unknown
     * @throws IllegalArgumentException when the model has no such service port
     */
    public RouteDecision decide(Target target, String callerNamespace, HttpRequest req, RandomGenerator random) {
        requireNonNull(target, "target");
        requireNonNull(req, "req");
        requireNonNull(random, "random");
        ServiceDef svc = services.get(target.namespace() + "/" + target.service());
        if (svc == null || svc.ports().stream().noneMatch(p -> p.port() == target.port())) {
            throw new IllegalArgumentException(svc == null
                    ? "no Service " + target.namespace() + "/" + target.service() + " in the configuration"
                    : "Service " + target.namespace() + "/" + target.service() + " has no port " + target.port());
        }
        List<Candidate> candidates = new ArrayList<>();
        boolean grpc = req.grpc() && candidates(grpcRoutes, GRPC, target, callerNamespace, req, candidates);
        if (!grpc) {
            candidates(httpRoutes, HTTP, target, callerNamespace, req, candidates);
        }
        BackendRef self = new BackendRef(BackendRef.SERVICE, target.namespace(), target.service(), target.port(), 1,
                List.of());
        if (candidates.isEmpty()) {
            return forward(null, -1, self, req, req.path(), req.host(), req.headers(), List.of(), List.of(),
                    Timeouts.NONE, null, "no route is attached to " + target + ": to the service itself");
        }
        Candidate best = candidates.stream().filter(Candidate::matched).min(PRECEDENCE).orElse(null);
        if (best == null) {
            return new RouteDecision(404, null, -1, null, null, null, req.headers(), null, List.of(), List.of(),
                    Timeouts.NONE, null, "no rule of the routes attached to " + target + " matches", null, null, null);
        }
        return apply(best, target, req, random, self);
    }

    /**
     * The rule's decision; a rule naming a LocalRateLimit is reported with it (but a redirect, which
     * the waypoint answers without taking a token).
     */
    private RouteDecision apply(Candidate c, Target target, HttpRequest req, RandomGenerator random,
            BackendRef self) {
        LocalRateLimit limit = null;
        for (Filter f : c.filters()) {
            if (f instanceof ExtensionRef e && e.kind().equals(LocalRateLimit.KIND)) {
                limit = limits.get(new ObjectRef(LocalRateLimit.KIND, c.route().namespace(), e.name()));
                if (limit == null) {
                    return missing(c, req, e);
                }
            }
        }
        RouteDecision d = decide(c, target, req, random, self);
        return d.location() != null ? d : d.limited(limit);
    }

    /** The Gateway API's answer to an ExtensionRef that resolves to no object: 500. */
    private static RouteDecision missing(Candidate c, HttpRequest req, ExtensionRef e) {
        return fail(500, c, req.headers(), List.of(), List.of(), c.where() + " names " + e.kind() + " "
                + c.route().namespace() + "/" + e.name() + ", which does not exist");
    }

    private RouteDecision decide(Candidate c, Target target, HttpRequest req, RandomGenerator random,
            BackendRef self) {
        List<Header> headers = req.headers();
        String path = req.path();
        String host = req.host();
        List<BackendRef> mirrors = new ArrayList<>();
        List<HeaderModifier> response = new ArrayList<>();
        Duration delay = null;
        for (Filter f : c.filters()) {
            switch (f) {
                case ExtensionRef e when e.kind().equals(LocalRateLimit.KIND) -> {
                    // resolved by apply
                }
                case ExtensionRef e -> {
                    HttpFault fault = faults.get(new ObjectRef(HttpFault.KIND, c.route().namespace(), e.name()));
                    if (fault == null) {
                        return missing(c, req, e);
                    }
                    // As the waypoint applies Envoy's fault filter: the delay first, then the abort.
                    if (fault.delay() != null && fault.delay().percentage() > random.nextInt(100)) {
                        delay = fault.delay().fixedDelay();
                    }
                    if (fault.abort() != null && fault.abort().percentage() > random.nextInt(100)) {
                        RouteDecision aborted = fail(fault.abort().httpStatus(), c, headers, mirrors, response,
                                "aborted by " + HttpFault.KIND + " " + fault.ref().qualifiedName() + " of "
                                        + c.where());
                        if (fault.abort().grpcStatus() >= 0) {
                            aborted = aborted.grpc(fault.abort().grpcStatus());
                        }
                        return delay == null ? aborted : aborted.delayed(delay);
                    }
                }
                case HeaderModifier m when m.response() -> response.add(m);
                case HeaderModifier m -> headers = RequestFilters.modify(headers, m);
                case Rewrite r -> {
                    path = r.path() == null ? path : RequestFilters.replacePath(path, r.path(), c.prefix());
                    host = r.hostname() == null ? host : r.hostname();
                }
                case Mirror m -> {
                    if (m.percent() > random.nextInt(100)) {
                        mirrors.add(m.backend());
                    }
                }
                case Redirect r -> {
                    return new RouteDecision(r.statusCode(), c.route(), c.rule(), null, null, null, headers,
                            RequestFilters.location(r, req, target.port(), c.prefix()), List.copyOf(mirrors),
                            List.copyOf(response), c.timeouts(), c.retry(), "redirected by " + c.where(), null, null,
                            null);
                }
            }
        }
        BackendRef chosen;
        if (c.backends().isEmpty()) {
            chosen = self;
        } else {
            long total = c.backends().stream().mapToLong(BackendRef::weight).sum();
            if (total == 0) {
                return fail(500, c, headers, mirrors, response, "every backend of " + c.where() + " has weight 0");
            }
            long draw = random.nextLong(total);
            chosen = null;
            for (BackendRef b : c.backends()) {
                draw -= b.weight();
                if (draw < 0) {
                    chosen = b;
                    break;
                }
            }
        }
        String invalid = invalid(chosen, c.route());
        if (invalid != null) {
            return fail(500, c, headers, mirrors, response, "backend " + chosen.display() + " of " + c.where()
                    + " is invalid: " + invalid);
        }
        if (readyEndpoints.getOrDefault(chosen.namespace() + "/" + chosen.name(), 0) == 0) {
            return fail(503, c, headers, mirrors, response, "backend " + chosen.display() + " has no ready endpoint");
        }
        for (Filter f : chosen.filters()) {
            if (f instanceof HeaderModifier m) {
                if (m.response()) {
                    response.add(m);
                } else {
                    headers = RequestFilters.modify(headers, m);
                }
            }
        }
        String sent = path + (req.query().isEmpty() ? "" : "?" + req.query());
        RouteDecision d = forward(c.route(), c.rule(), chosen, req, sent, host, headers, mirrors, response,
                c.timeouts(), c.retry(), "forwarded by " + c.where());
        return delay == null ? d : d.delayed(delay);
    }

    private static RouteDecision forward(ObjectRef route, int rule, BackendRef backend, HttpRequest req, String path,
            String host, List<Header> headers, List<BackendRef> mirrors, List<HeaderModifier> response,
            Timeouts timeouts, Retry retry, String reason) {
        String sent = route == null && !req.query().isEmpty() ? path + "?" + req.query() : path;
        return new RouteDecision(200, route, rule, backend, sent, host, headers, null, List.copyOf(mirrors),
                List.copyOf(response), timeouts, retry, reason, null, null, null);
    }

    private static RouteDecision fail(int status, Candidate c, List<Header> headers, List<BackendRef> mirrors,
            List<HeaderModifier> response, String reason) {
        return new RouteDecision(status, c.route(), c.rule(), null, null, null, headers, null, List.copyOf(mirrors),
                List.copyOf(response), c.timeouts(), c.retry(), reason, null, null, null);
    }

    /** Why a backend cannot take traffic (a 500 for its share), or null when it can. */
    private String invalid(BackendRef b, ObjectRef route) {
        if (!b.kind().equals(BackendRef.SERVICE)) {
            return "kind " + b.kind() + " is not a core Service";
        }
        if (route != null && !b.namespace().equals(route.namespace())) {
            return "another namespace needs a ReferenceGrant, which Wisp does not read yet";
        }
        ServiceDef s = services.get(b.namespace() + "/" + b.name());
        if (s == null) {
            return "no such Service";
        }
        if (s.ports().stream().noneMatch(p -> p.port() == b.port())) {
            return "the Service has no port " + b.port();
        }
        return null;
    }

    /** How a request is matched and ranked by one kind of route's matches. */
    private record MatchKind<M>(Function<M, int[]> rank, BiPredicate<M, HttpRequest> test,
            Function<M, String> prefix) {}

    private static final MatchKind<HttpRoute.Match> HTTP = new MatchKind<>(Precedence::rank, Matching::matches,
            m -> m.path().value());
    private static final MatchKind<GrpcRoute.Match> GRPC = new MatchKind<>(Precedence::rank, Matching::matches,
            m -> "/");

    /**
     * Adds a candidate for every match of every rule of the routes attached to the target port,
     * ranked by the route's hostnames first, then by the match; whether there are any now.
     */
    private static <U extends RouteRule<M>, M> boolean candidates(List<? extends ServiceRoute<U>> routes,
            MatchKind<M> kind, Target target, String caller, HttpRequest req, List<Candidate> out) {
        for (ServiceRoute<U> r : attached(routes, target, caller)) {
            int[] host = hostRank(r.hostnames(), req);
            eachMatch(r.rules(), (rule, i, match, m) -> {
                int[] rank = Precedence.concat(host, kind.rank().apply(match));
                out.add(new Candidate(r.ref(), r.created(), i, m, rank, host[0] >= 0 && kind.test().test(match, req),
                        kind.prefix().apply(match), rule.filters(), rule.backends(), rule.timeouts(), rule.retry()));
            });
        }
        return !out.isEmpty();
    }

    /** One match of a route: its rule and that rule's index, the match and its index in the rule. */
    private interface MatchVisitor<R, M> {
        void visit(R rule, int ruleIndex, M match, int matchIndex);
    }

    /** Visits every match of every rule, in order: the order that breaks the last precedence ties. */
    private static <R extends RouteRule<M>, M> void eachMatch(List<R> rules, MatchVisitor<R, M> visitor) {
        for (int i = 0; i < rules.size(); i++) {
            R rule = rules.get(i);
            List<M> ms = rule.matches();
            for (int m = 0; m < ms.size(); m++) {
                visitor.visit(rule, i, ms.get(m), m);
            }
        }
    }

    /** Routes attached to the target port: the caller's namespace's (consumer) routes if any, else the producer's. */
    private static <R extends ServiceRoute<?>> List<R> attached(List<? extends R> routes, Target target,
            String caller) {
        List<R> producer = new ArrayList<>();
        List<R> consumer = new ArrayList<>();
        for (R r : routes) {
            boolean attaches = r.parents().stream().anyMatch(p -> p.namespace().equals(target.namespace())
                    && p.name().equals(target.service()) && (p.port() == null || p.port() == target.port()));
            String ns = r.ref().namespace();
            if (!attaches) {
                continue;
            }
            if (ns.equals(target.namespace())) {
                producer.add(r);
            } else if (ns.equals(caller)) {
                consumer.add(r);
            }
        }
        return consumer.isEmpty() ? producer : consumer;
    }

    /**
     * How specifically a route's hostnames match the request's host: {2, length} for an exact name,
     * {1, length} for a wildcard, {0, 0} for a route without hostnames, {-1, 0} for no match.
     */
    private static int[] hostRank(List<String> hostnames, HttpRequest req) {
        if (hostnames.isEmpty()) {
            return new int[]{0, 0};
        }
        String host = req.hostName().toLowerCase(java.util.Locale.ROOT);
        int[] best = {-1, 0};
        for (String h : hostnames) {
            int[] r = h.equals(host)
                    ? new int[]{2, h.length()}
                    : h.startsWith("*.") && host.endsWith(h.substring(1)) ? new int[]{1, h.length()} : null;
            if (r != null && Arrays.compare(r, best) > 0) {
                best = r;
            }
        }
        return best;
    }

    /** One match of one rule, ranked for precedence. */
    private record Candidate(ObjectRef route, Instant created, int rule, int match, int[] rank, boolean matched,
            String prefix, List<Filter> filters, List<BackendRef> backends, Timeouts timeouts, Retry retry) {
        String where() {
            return route.kind() + " " + route.qualifiedName() + " rule " + rule;
        }
    }
}
