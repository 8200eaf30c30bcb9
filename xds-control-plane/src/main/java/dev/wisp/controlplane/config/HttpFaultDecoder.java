package dev.wisp.controlplane.config;

import dev.wisp.controlplane.model.HttpFault;
import dev.wisp.controlplane.model.ObjectRef;
import java.time.Duration;

/**
 * Decodes {@code wisp.dev/v1alpha1 HTTPFault} strictly: {@code spec.delay} ({@code fixedDelay}, a
 * Gateway API duration, and {@code percentage} 0-100, 100 when absent) and {@code spec.abort}
 * ({@code httpStatus} 400-599 or {@code grpcStatus} 0-16, exactly one, and {@code percentage}); at
 * least one of them. Errors name the field.
 */
final class HttpFaultDecoder {
    private HttpFaultDecoder() {}

    static HttpFault httpFault(Fields f, YNode doc, ObjectRef ref) {
        YNode spec = spec(f, doc, "required: delay, abort or both", "delay", "abort");
        if (spec == null) {
            return null;
        }
        HttpFault.Delay delay = null;
        YNode d = f.child(spec, "delay");
        if (d != null) {
            f.allowOnly(d, "spec.delay", "fixedDelay", "percentage");
            Duration fixed = RouteFilterDecoder.duration(f, d, "fixedDelay", "spec.delay.fixedDelay");
            if (f.child(d, "fixedDelay") == null) {
                f.error(d, "spec.delay.fixedDelay", "required, such as 500ms");
            }
            delay = new HttpFault.Delay(fixed == null ? Duration.ZERO : fixed, percentage(f, d, "spec.delay"));
        }
        HttpFault.Abort abort = null;
        YNode a = f.child(spec, "abort");
        if (a != null) {
            f.allowOnly(a, "spec.abort", "httpStatus", "grpcStatus", "percentage");
            String status = f.string(a, "httpStatus", "spec.abort.httpStatus");
            String grpc = f.string(a, "grpcStatus", "spec.abort.grpcStatus");
            if ((status == null) == (grpc == null)) {
                f.error(a, "spec.abort", "needs exactly one of httpStatus (400 to 599) and grpcStatus (0 to 16)");
            }
            int code = status == null
                    ? 0
                    : RouteFilterDecoder.integer(f, f.child(a, "httpStatus"), status, "spec.abort.httpStatus", 400,
                            599);
            int grpcCode = grpc == null
                    ? -1
                    : RouteFilterDecoder.integer(f, f.child(a, "grpcStatus"), grpc, "spec.abort.grpcStatus", 0, 16);
            abort = new HttpFault.Abort(code, grpcCode, percentage(f, a, "spec.abort"));
        }
        if (delay == null && abort == null) {
            f.error(spec, "spec", "needs delay, abort or both");
        }
        return new HttpFault(ref, delay, abort);
    }

    /**
     * The {@code spec} of a Wisp kind's document with only {@code fields}; null (an error saying
     * {@code required}) when absent.
     */
    static YNode spec(Fields f, YNode doc, String required, String... fields) {
        f.allowOnly(doc, "", "apiVersion", "kind", "metadata", "spec");
        YNode spec = f.child(doc, "spec");
        if (spec == null) {
            f.error(doc, "spec", required);
        } else {
            f.allowOnly(spec, "spec", fields);
        }
        return spec;
    }

    private static int percentage(Fields f, YNode at, String path) {
        String p = f.string(at, "percentage", path + ".percentage");
        return p == null
                ? 100
                : RouteFilterDecoder.integer(f, f.child(at, "percentage"), p, path + ".percentage", 0, 100);
    }
}
