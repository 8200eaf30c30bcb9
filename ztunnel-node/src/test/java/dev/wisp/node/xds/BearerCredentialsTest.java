package dev.wisp.node.xds;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Attributes;
import io.grpc.CallCredentials;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.SecurityLevel;
import io.grpc.Status;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** The node credential goes only into channels with TLS, and only as a bearer token. */
class BearerCredentialsTest {
    static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization",
            Metadata.ASCII_STRING_MARSHALLER);

    record Outcome(Metadata headers, Status failure) {}

    static Outcome apply(SecurityLevel level) {
        AtomicReference<Outcome> out = new AtomicReference<>();
        CallCredentials.RequestInfo info = new CallCredentials.RequestInfo() {
            @Override
            public MethodDescriptor<?, ?> getMethodDescriptor() {
                return null;
            }

            @Override
            public io.grpc.CallOptions getCallOptions() {
                return io.grpc.CallOptions.DEFAULT;
            }

            @Override
            public SecurityLevel getSecurityLevel() {
                return level;
            }

            @Override
            public String getAuthority() {
                return "10.0.0.2:15012";
            }

            @Override
            public Attributes getTransportAttrs() {
                return Attributes.EMPTY;
            }
        };
        BearerCredentials.of(() -> "s3cret").applyRequestMetadata(info, Runnable::run,
                new CallCredentials.MetadataApplier() {
                    @Override
                    public void apply(Metadata headers) {
                        out.set(new Outcome(headers, null));
                    }

                    @Override
                    public void fail(Status status) {
                        out.set(new Outcome(null, status));
                    }
                });
        return out.get();
    }

    @Test
    void sentAsBearerOverTls() {
        Outcome o = apply(SecurityLevel.PRIVACY_AND_INTEGRITY);
        assertThat(o.failure()).isNull();
        assertThat(o.headers().get(AUTHORIZATION)).isEqualTo("Bearer s3cret");
    }

    @Test
    void refusedOnAChannelWithoutTls() {
        for (SecurityLevel level : new SecurityLevel[]{SecurityLevel.NONE, SecurityLevel.INTEGRITY}) {
            Outcome o = apply(level);
            assertThat(o.headers()).isNull();
            assertThat(o.failure().getCode()).isEqualTo(Status.Code.UNAUTHENTICATED);
            assertThat(o.failure().getDescription()).isEqualTo(
                    "refusing to send the node credential to 10.0.0.2:15012 over a channel without TLS")
                    .doesNotContain("s3cret");
        }
    }
}
