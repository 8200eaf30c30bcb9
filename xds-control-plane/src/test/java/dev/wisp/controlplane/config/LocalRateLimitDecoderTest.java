package dev.wisp.controlplane.config;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.controlplane.model.HttpRoute;
import dev.wisp.controlplane.model.LocalRateLimit;
import dev.wisp.controlplane.model.RouteParts;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** {@code wisp.dev/v1alpha1 LocalRateLimit} documents and the ExtensionRef filter naming one. */
class LocalRateLimitDecoderTest {
    private static final String HEAD = HttpFaultDecoderTest.head("LocalRateLimit", "ten");

    @Test
    void aLimitDecodesItsBucketWithOneTokenPerFillWhenAbsent() {
        ConfigDecoder.Decoded d = ConfigDecoder.decode("l.yaml", HEAD + """
                spec: {tokens: 10, fillInterval: 1m30s}
                """);
        assertThat(d.errors()).isEmpty();
        assertThat(d.objects()).containsExactly(new LocalRateLimit(((LocalRateLimit) d.objects().getFirst()).ref(),
                10, 1, Duration.ofSeconds(90)));
        assertThat(d.objects().getFirst().ref().qualifiedName()).isEqualTo("shop/ten");
        LocalRateLimit l = (LocalRateLimit) ConfigDecoder.decode("l.yaml", HEAD + """
                spec: {tokens: 5, tokensPerFill: 5, fillInterval: 50ms}
                """).objects().getFirst();
        assertThat(l.tokensPerFill()).isEqualTo(5);
        assertThat(l.fillInterval()).isEqualTo(Duration.ofMillis(50));
    }

    @Test
    void aRuleNamesALimitAndAFaultOnceEach() {
        ConfigDecoder.Decoded d = ConfigDecoder.decode("r.yaml", RouteDecoderTest.ROUTE_HEAD + """
                  rules:
                  - filters:
                    - {type: ExtensionRef, extensionRef: {group: wisp.dev, kind: LocalRateLimit, name: ten}}
                    - {type: ExtensionRef, extensionRef: {group: wisp.dev, kind: HTTPFault, name: slow}}
                """);
        assertThat(d.errors()).isEmpty();
        assertThat(((HttpRoute) d.objects().getFirst()).rules().getFirst().filters()).containsExactly(
                new RouteParts.ExtensionRef("LocalRateLimit", "ten"), new RouteParts.ExtensionRef("HTTPFault", "slow"));
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', textBlock = """
            no spec              | `` | 1:spec: required: tokens, fillInterval and optionally tokensPerFill
            unknown field        | `spec: {tokens: 1, fillInterval: 1s, burst: 2}` | 4:spec.burst: unknown field; expected one of fillInterval, tokens, tokensPerFill
            no tokens            | `spec: {fillInterval: 1s}` | 4:spec.tokens: required, 1 to 1000000
            zero tokens          | `spec: {tokens: 0, fillInterval: 1s}` | 4:spec.tokens: '0' is not a whole number from 1 to 1000000
            too many tokens      | `spec: {tokens: 1000001, fillInterval: 1s}` | 4:spec.tokens: '1000001' is not a whole number from 1 to 1000000
            zero per fill        | `spec: {tokens: 1, tokensPerFill: 0, fillInterval: 1s}` | 4:spec.tokensPerFill: '0' is not a whole number from 1 to 1000000
            no interval          | `spec: {tokens: 1}` | 4:spec.fillInterval: required, such as 1s
            bad interval         | `spec: {tokens: 1, fillInterval: often}` | 4:spec.fillInterval: 'often' is not a Gateway API duration such as 500ms, 10s or 1m30s
            short interval       | `spec: {tokens: 1, fillInterval: 49ms}` | 4:spec.fillInterval: '49ms' is not from 50ms to 24h
            long interval        | `spec: {tokens: 1, fillInterval: 25h}` | 4:spec.fillInterval: '25h' is not from 50ms to 24h
            """)
    void limitErrorsNameTheField(String title, String spec, String expected) {
        ConfigDecoderTest.assertRefused("l.yaml", HEAD + (spec == null ? "" : spec) + "\n", "LocalRateLimit shop/ten",
                expected);
    }

    @Test
    void aRuleNamingTwoLimitsIsRefused() {
        ConfigDecoderTest.assertRefused("r.yaml", RouteDecoderTest.ROUTE_HEAD + """
                  rules:
                  - filters:
                    - {type: ExtensionRef, extensionRef: {group: wisp.dev, kind: LocalRateLimit, name: a}}
                    - {type: ExtensionRef, extensionRef: {group: wisp.dev, kind: LocalRateLimit, name: b}}
                """, "HTTPRoute shop/r", "9:spec.rules[0].filters[1].type: an ExtensionRef to a "
                + "LocalRateLimit may appear once per rule");
    }
}
