package dev.wisp.node.xds;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Status;
import io.netty.handler.ssl.SslHandshakeTimeoutException;
import java.nio.channels.ClosedChannelException;
import javax.net.ssl.SSLException;
import org.junit.jupiter.api.Test;

/**
 * What the agent's "control plane … unreachable: …" line says: gRPC's description without its
 * pipeline dump, with the innermost cause (issue 12: a bare "io exception" hid that the agent's own
 * TLS handshake timed out).
 */
class ReconnectReasonTest {
    @Test
    void namesTheInnermostCauseAndDropsThePipelineDump() {
        Status s = Status.UNAVAILABLE.withDescription("io exception\nChannel Pipeline: [SslHandler#0, "
                + "ProtocolNegotiators$ClientTlsHandler#0]")
                .withCause(new SSLException("wrapped", new SslHandshakeTimeoutException(
                        "handshake timed out after 10000ms")));
        assertThat(DeltaXdsClient.describe(s))
                .isEqualTo("io exception (SslHandshakeTimeoutException: handshake timed out after 10000ms)");
    }

    @Test
    void aStatusWithoutCauseKeepsItsDescription() {
        assertThat(DeltaXdsClient.describe(Status.UNAVAILABLE.withDescription("Network closed for unknown reason")))
                .isEqualTo("Network closed for unknown reason");
        assertThat(DeltaXdsClient.describe(Status.UNAUTHENTICATED.withDescription("node credential not recognised")))
                .isEqualTo("node credential not recognised");
    }

    @Test
    void aCauseWithoutDescriptionOrMessageIsNamed() {
        assertThat(DeltaXdsClient.describe(Status.UNAVAILABLE.withCause(new ClosedChannelException())))
                .isEqualTo("ClosedChannelException");
    }
}
