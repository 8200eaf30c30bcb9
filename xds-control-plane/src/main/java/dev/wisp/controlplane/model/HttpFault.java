package dev.wisp.controlplane.model;

import java.time.Duration;

/**
 * A {@code wisp.dev/v1alpha1 HTTPFault}: fault injection for the route rules that name it in an
 * {@code ExtensionRef} filter (the Gateway API has no fault filter of its own). Served to the
 * waypoint as Envoy's {@code envoy.extensions.filters.http.fault.v3.HTTPFault} on the rule's routes.
 *
 * @param delay null when the object injects no delay
 * @param abort null when it aborts nothing; the decoder refuses an object with neither
 */
public record HttpFault(ObjectRef ref, Delay delay, Abort abort) implements MeshObject {
    public static final String KIND = "HTTPFault";
    public static final String GROUP = "wisp.dev";
    public static final String API_VERSION = GROUP + "/v1alpha1";

    /** {@code delay}: {@code fixedDelay} before the request is forwarded, for {@code percentage} of requests. */
    public record Delay(Duration fixedDelay, int percentage) {}

    /**
     * {@code abort}: the request answered without reaching a backend, with {@code httpStatus}
     * (400-599) or with {@code grpcStatus} (0-16; Envoy's {@code grpc_status}: a gRPC call gets it
     * trailers-only, any other request HTTP 200, as Envoy answers).
     *
     * @param httpStatus 0 when the abort gives a gRPC status
     * @param grpcStatus -1 when the abort gives an HTTP status
     */
    public record Abort(int httpStatus, int grpcStatus, int percentage) {
        /** An abort with an HTTP status. */
        public Abort(int httpStatus, int percentage) {
            this(httpStatus, -1, percentage);
        }
    }
}
