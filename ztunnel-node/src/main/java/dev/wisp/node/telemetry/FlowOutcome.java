package dev.wisp.node.telemetry;

import java.util.Optional;

/**
 * How a connection ended, as telemetry records it: the flow record's verdict and reason, the
 * metrics' {@code response_flags} and the access log's {@code error=} text. The proxy's
 * {@code dev.wisp.node.proxy.Outcome} implements it; telemetry reads these renderings and never
 * parses a verdict out of text. (An interface here, so that telemetry does not depend on the proxy.)
 */
public interface FlowOutcome {
    /** {@link FlowRecord#ALLOWED}, {@link FlowRecord#DENIED} or {@link FlowRecord#FAILED}. */
    String verdict();

    /** Why it was denied or failed, or the error that ended an allowed connection; empty when clean. */
    String reason();

    /** Istio's {@code response_flags} label: {@code -} when nothing went wrong. */
    String responseFlags();

    /** The access log's {@code error=} text; empty for a connection that ended cleanly. */
    Optional<String> error();
}
