package dev.wisp.waypoint.route;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.Any;
import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.extensions.filters.common.fault.v3.FaultDelay;
import io.envoyproxy.envoy.extensions.filters.http.fault.v3.FaultAbort;
import io.envoyproxy.envoy.extensions.filters.http.fault.v3.HTTPFault;
import io.envoyproxy.envoy.type.v3.FractionalPercent;
import java.time.Duration;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Envoy's fault filter configuration on a route, drawn per request. */
public class FaultsTest {
    public static Route route(HTTPFault fault) {
        return Route.newBuilder().setName("r").putTypedPerFilterConfig(Faults.FILTER, Any.pack(fault)).build();
    }

    public static FractionalPercent percent(int p) {
        return FractionalPercent.newBuilder().setNumerator(p).build();
    }

    public static HTTPFault abort(int status, int percent) {
        return HTTPFault.newBuilder().setAbort(FaultAbort.newBuilder().setHttpStatus(status)
                .setPercentage(percent(percent))).build();
    }

    @Test
    void anAbortOfThirtyPercentAbortsAboutThirtyPercentOfDraws() {
        Route r = route(abort(418, 30));
        Random random = new Random(42);
        int aborted = 0;
        for (int i = 0; i < 10_000; i++) {
            Faults.Injected f = Faults.draw(r, random);
            if (f.aborted()) {
                assertThat(f.abortStatus()).isEqualTo(418);
                assertThat(f.delayed()).isFalse();
                aborted++;
            }
        }
        assertThat(aborted).isBetween(2_800, 3_200);
    }

    @Test
    void zeroPercentNeverAndNoPercentageAlways() {
        Random random = new Random(1);
        Route never = route(abort(500, 0));
        Route always = route(HTTPFault.newBuilder().setAbort(FaultAbort.newBuilder().setHttpStatus(500)).build());
        for (int i = 0; i < 1_000; i++) {
            assertThat(Faults.draw(never, random)).isEqualTo(Faults.Injected.NONE);
            assertThat(Faults.draw(always, random).abortStatus()).isEqualTo(500);
        }
    }

    @Test
    void aDelayAndAnAbortAreDrawnTogetherAndARouteWithoutFaultInjectsNothing() {
        HTTPFault both = abort(503, 100).toBuilder().setDelay(FaultDelay.newBuilder()
                .setFixedDelay(com.google.protobuf.Duration.newBuilder().setSeconds(1).setNanos(5_000_000))
                .setPercentage(percent(100))).build();
        assertThat(Faults.draw(route(both), new Random(2)))
                .isEqualTo(new Faults.Injected(Duration.ofMillis(1005), 503));
        assertThat(Faults.draw(Route.newBuilder().setName("plain").build(), new Random(2)))
                .isEqualTo(Faults.Injected.NONE);
    }

    @Test
    void aGrpcStatusAbortIsAnsweredTwoHundredWithTheGrpcStatusAsEnvoyDoes() {
        HTTPFault grpc = HTTPFault.newBuilder().setAbort(FaultAbort.newBuilder().setGrpcStatus(0)).build();
        assertThat(Faults.draw(route(grpc), new Random(2)))
                .as("grpc_status 0 (OK) is a status too").isEqualTo(new Faults.Injected(Duration.ZERO, 200, 0));
        assertThat(Faults.draw(route(abort(503, 100)), new Random(2)).grpcStatus()).isEqualTo(-1);
    }
}
