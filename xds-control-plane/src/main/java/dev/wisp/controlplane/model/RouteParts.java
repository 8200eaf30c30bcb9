package dev.wisp.controlplane.model;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * The parts {@link HttpRoute} and {@link GrpcRoute} share (Gateway API v1), as validated values.
 * Source-agnostic: the YAML directory and a Kubernetes informer fill the same records.
 */
public final class RouteParts {
    private RouteParts() {}

    /** How a string is matched: Gateway API {@code Exact} or {@code RegularExpression} (Java syntax, whole value). */
    public enum MatchType {
        EXACT, REGULAR_EXPRESSION
    }

    /**
     * A GAMMA mesh attachment: {@code parentRefs[]} of {@code kind: Service} (group {@code ""}).
     *
     * @param port the service port the route applies to; null for every port
     */
    public record ParentRef(String namespace, String name, Integer port) {}

    /**
     * {@code backendRefs[]} (also a mirror's target).
     *
     * @param kind {@code group/kind} as written ({@code /Service} for core services); another kind is an
     *        invalid backend (a 500 for the share of traffic it would take), not a refused route
     * @param weight 0 … 1,000,000; 1 when absent
     * @param filters filters applied only when this backend is chosen
     */
    public record BackendRef(String kind, String namespace, String name, int port, int weight, List<Filter> filters) {
        public static final String SERVICE = "/Service";

        /** {@code ns/name:port}, as {@code wisp route check} prints backends. */
        public String display() {
            return namespace + "/" + name + ":" + port;
        }
    }

    /** A header or query-parameter match; header names are kept lower-case (they match case-insensitively). */
    public record StringMatch(MatchType type, String name, String value) {}

    /** {@code path} of an HTTPRoute match. */
    public record PathMatch(PathType type, String value) {
        public static final PathMatch DEFAULT = new PathMatch(PathType.PATH_PREFIX, "/");
    }

    public enum PathType {
        EXACT, PATH_PREFIX, REGULAR_EXPRESSION
    }

    /** A route filter (rule level or backend level). */
    public sealed interface Filter permits HeaderModifier, Redirect, Rewrite, Mirror, ExtensionRef {}

    /**
     * {@code RequestHeaderModifier} / {@code ResponseHeaderModifier}: names lower-case; a name appears
     * in at most one of set, add and remove (the decoder refuses otherwise), so their order does not
     * matter.
     */
    public record HeaderModifier(boolean response, Map<String, String> set, Map<String, String> add,
            List<String> remove) implements Filter {}

    /** {@code ReplaceFullPath} or {@code ReplacePrefixMatch} with its value. */
    public record PathModifier(boolean fullPath, String value) {}

    /**
     * {@code RequestRedirect}; null fields keep the request's value.
     *
     * @param statusCode 301 or 302 (302 when absent)
     */
    public record Redirect(String scheme, String hostname, Integer port, PathModifier path, int statusCode)
            implements
                Filter {}

    /** {@code URLRewrite}; null fields keep the request's value. */
    public record Rewrite(String hostname, PathModifier path) implements Filter {}

    /** {@code RequestMirror}: a copy of the request to {@code backend}, its answer dropped. */
    public record Mirror(BackendRef backend, int percent) implements Filter {}

    /**
     * {@code ExtensionRef} to a Wisp kind in the route's namespace (today {@code wisp.dev/HTTPFault}).
     * Resolved when the rule is applied: a name no object has makes the rule answer 500, as the
     * Gateway API asks of an unresolvable reference.
     */
    public record ExtensionRef(String kind, String name) implements Filter {}

    /**
     * {@code timeouts}; null when absent, {@link Duration#ZERO} when written {@code 0s} (disabled).
     */
    public record Timeouts(Duration request, Duration backendRequest) {
        public static final Timeouts NONE = new Timeouts(null, null);
    }

    /**
     * HTTPRoute's experimental {@code retry} (GEP-1731); null fields are the implementation's defaults.
     *
     * @param codes HTTP status codes (400-599) that are retried
     */
    public record Retry(List<Integer> codes, Integer attempts, Duration backoff) {}

    /**
     * What an HTTPRoute and a GRPCRoute are alike in: the services they attach to, the hostnames
     * that narrow them and their rules.
     *
     * @param <U> the kind's rule
     */
    public interface ServiceRoute<U extends RouteRule<?>> {
        ObjectRef ref();

        Instant created();

        List<ParentRef> parents();

        List<String> hostnames();

        List<U> rules();
    }

    /**
     * A rule of either kind: its matches, filters and backends; a kind without timeouts or
     * retries (GRPCRoute) has none.
     *
     * @param <M> the kind's match
     */
    public interface RouteRule<M> {
        List<M> matches();

        List<Filter> filters();

        List<BackendRef> backends();

        default Timeouts timeouts() {
            return Timeouts.NONE;
        }

        default Retry retry() {
            return null;
        }
    }
}
