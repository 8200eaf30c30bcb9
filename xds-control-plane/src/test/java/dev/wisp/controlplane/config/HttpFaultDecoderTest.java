package dev.wisp.controlplane.config;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.controlplane.model.HttpFault;
import dev.wisp.controlplane.model.HttpRoute;
import dev.wisp.controlplane.model.RouteParts;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** {@code wisp.dev/v1alpha1 HTTPFault} documents and the ExtensionRef filter naming one. */
class HttpFaultDecoderTest {
    private static final String HEAD = head("HTTPFault", "slow");

    /** The head of a Wisp kind's document in namespace {@code shop}. */
    static String head(String kind, String name) {
        return "apiVersion: wisp.dev/v1alpha1\nkind: " + kind + "\nmetadata: {name: " + name + ", namespace: shop}\n";
    }

    @Test
    void aFaultDecodesItsDelayAndAbort() {
        ConfigDecoder.Decoded d = ConfigDecoder.decode("f.yaml", HEAD + """
                spec:
                  delay: {fixedDelay: 1s500ms, percentage: 25}
                  abort: {httpStatus: 503}
                """);
        assertThat(d.errors()).isEmpty();
        HttpFault f = (HttpFault) d.objects().getFirst();
        assertThat(f.ref().qualifiedName()).isEqualTo("shop/slow");
        assertThat(f.delay()).isEqualTo(new HttpFault.Delay(Duration.ofMillis(1500), 25));
        assertThat(f.abort()).as("percentage 100 when absent").isEqualTo(new HttpFault.Abort(503, 100));
    }

    @Test
    void anAbortMayGiveAGrpcStatusInstead() {
        ConfigDecoder.Decoded d = ConfigDecoder.decode("f.yaml", HEAD + """
                spec:
                  abort: {grpcStatus: 0, percentage: 30}
                """);
        assertThat(d.errors()).isEmpty();
        assertThat(((HttpFault) d.objects().getFirst()).abort()).isEqualTo(new HttpFault.Abort(0, 0, 30));
    }

    @Test
    void aRuleFilterNamesTheFaultInTheRoutesNamespace() {
        ConfigDecoder.Decoded d = ConfigDecoder.decode("r.yaml", RouteDecoderTest.ROUTE_HEAD + """
                  rules:
                  - filters: [{type: ExtensionRef, extensionRef: {group: wisp.dev, kind: HTTPFault, name: slow}}]
                """);
        assertThat(d.errors()).isEmpty();
        assertThat(((HttpRoute) d.objects().getFirst()).rules().getFirst().filters())
                .containsExactly(new RouteParts.ExtensionRef("HTTPFault", "slow"));
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', textBlock = """
            neither              | `spec: {}` | 4:spec: needs delay, abort or both
            no spec              | `` | 1:spec: required: delay, abort or both
            unknown field        | `spec: {abort: {httpStatus: 500}, retry: {}}` | 4:spec.retry: unknown field; expected one of abort, delay
            delay without time   | `spec: {delay: {percentage: 10}}` | 4:spec.delay.fixedDelay: required, such as 500ms
            bad duration         | `spec: {delay: {fixedDelay: half a second}}` | 4:spec.delay.fixedDelay: 'half a second' is not a Gateway API duration such as 500ms, 10s or 1m30s
            delay percentage     | `spec: {delay: {fixedDelay: 1s, percentage: 101}}` | 4:spec.delay.percentage: '101' is not a whole number from 0 to 100
            abort without status | `spec: {abort: {percentage: 5}}` | 4:spec.abort: needs exactly one of httpStatus (400 to 599) and grpcStatus (0 to 16)
            abort both statuses  | `spec: {abort: {httpStatus: 503, grpcStatus: 14}}` | 4:spec.abort: needs exactly one of httpStatus (400 to 599) and grpcStatus (0 to 16)
            abort grpc status    | `spec: {abort: {grpcStatus: 17}}` | 4:spec.abort.grpcStatus: '17' is not a whole number from 0 to 16
            abort status         | `spec: {abort: {httpStatus: 200}}` | 4:spec.abort.httpStatus: '200' is not a whole number from 400 to 599
            abort percentage     | `spec: {abort: {httpStatus: 500, percentage: -1}}` | 4:spec.abort.percentage: '-1' is not a whole number from 0 to 100
            """)
    void faultErrorsNameTheField(String title, String spec, String expected) {
        ConfigDecoderTest.assertRefused("f.yaml", HEAD + (spec == null ? "" : spec) + "\n", "HTTPFault shop/slow",
                expected);
    }
}
