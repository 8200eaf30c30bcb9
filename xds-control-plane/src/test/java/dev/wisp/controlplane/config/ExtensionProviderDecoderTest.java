package dev.wisp.controlplane.config;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.controlplane.model.ExtensionProvider;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** MeshConfig's {@code spec.extensionProviders}: what is read, and each refusal naming its field. */
class ExtensionProviderDecoderTest {
    static String mesh(String providers) {
        return "apiVersion: wisp.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\nspec:\n  extensionProviders:\n"
                + providers;
    }

    @Test
    void grpcProvidersAreReadWithIstiosDefaults() {
        LoadResult r = ConfigSet.load(Map.of("m.yaml",
                mesh("""
                          - name: opa
                            envoyExtAuthzGrpc: {service: opa.authz.svc.cluster.local, port: 9191}
                          - name: host
                            envoyExtAuthzGrpc: {service: "10.110.0.1", port: "7000", timeout: 1500ms, failOpen: true, statusOnError: "503"}
                        """)));
        assertThat(r.errors()).isEmpty();
        assertThat(r.model().mesh().extensionProviders()).containsExactly(
                new ExtensionProvider("opa", "opa.authz.svc.cluster.local", 9191, Duration.ofSeconds(600), false, 403),
                new ExtensionProvider("host", "10.110.0.1", 7000, Duration.ofMillis(1500), true, 503));
        assertThat(r.model().mesh().extensionProvider("host")).isPresent();
        assertThat(r.model().mesh().extensionProvider("nope")).isEmpty();
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', textBlock = """
            http provider      | `  - {name: a, envoyExtAuthzHttp: {service: a.b.svc.cluster.local, port: 80}}`  | spec.extensionProviders[0].envoyExtAuthzHttp: not supported: only envoyExtAuthzGrpc (Envoy's ext_authz over gRPC) is
            tracing provider   | `  - {name: a, zipkin: {service: z, port: 9411}}`                                | spec.extensionProviders[0].zipkin: not supported: only envoyExtAuthzGrpc
            no kind            | `  - {name: a}`                                                                   | spec.extensionProviders[0]: needs a provider kind (envoyExtAuthzGrpc)
            no name            | `  - {envoyExtAuthzGrpc: {service: a, port: 1}}`                                   | spec.extensionProviders[0].name: required
            twice              | `  - {name: a, envoyExtAuthzGrpc: {service: a, port: 1}}\\n  - {name: a, envoyExtAuthzGrpc: {service: b, port: 1}}` | spec.extensionProviders[1].name: 'a' is named twice
            no service         | `  - {name: a, envoyExtAuthzGrpc: {port: 1}}`                                      | spec.extensionProviders[0].envoyExtAuthzGrpc.service: required
            bad service        | `  - {name: a, envoyExtAuthzGrpc: {service: "ns/a.b", port: 1}}`                   | spec.extensionProviders[0].envoyExtAuthzGrpc.service: 'ns/a.b' is neither a host name nor an IP address
            bad address        | `  - {name: a, envoyExtAuthzGrpc: {service: "10.0.0.300", port: 1}}`               | spec.extensionProviders[0].envoyExtAuthzGrpc.service: '10.0.0.300' is neither a host name nor an IP address
            no port            | `  - {name: a, envoyExtAuthzGrpc: {service: a}}`                                   | spec.extensionProviders[0].envoyExtAuthzGrpc.port: required
            bad port           | `  - {name: a, envoyExtAuthzGrpc: {service: a, port: 70000}}`                      | spec.extensionProviders[0].envoyExtAuthzGrpc.port: '70000' is not a port number (1-65535)
            bad timeout        | `  - {name: a, envoyExtAuthzGrpc: {service: a, port: 1, timeout: 0.5s}}`           | spec.extensionProviders[0].envoyExtAuthzGrpc.timeout: '0.5s' is not a Gateway API duration
            zero timeout       | `  - {name: a, envoyExtAuthzGrpc: {service: a, port: 1, timeout: 0s}}`             | spec.extensionProviders[0].envoyExtAuthzGrpc.timeout: must be more than 0
            bad failOpen       | `  - {name: a, envoyExtAuthzGrpc: {service: a, port: 1, failOpen: yes}}`           | spec.extensionProviders[0].envoyExtAuthzGrpc.failOpen: 'yes' is not true or false
            bad statusOnError  | `  - {name: a, envoyExtAuthzGrpc: {service: a, port: 1, statusOnError: "42"}}`     | spec.extensionProviders[0].envoyExtAuthzGrpc.statusOnError: '42' is not an HTTP status (200-599)
            body not applied   | `  - {name: a, envoyExtAuthzGrpc: {service: a, port: 1, includeRequestBodyInCheck: {maxRequestBytes: 10}}}` | spec.extensionProviders[0].envoyExtAuthzGrpc.includeRequestBodyInCheck: unknown field; expected one of failOpen, port, service, statusOnError, timeout
            """)
    void refusalsNameTheField(String title, String providers, String expected) {
        ConfigDecoder.Decoded d = ConfigDecoder.decode("m.yaml", mesh(providers.replace("\\n", "\n") + "\n"));
        assertThat(d.errors()).as(title).hasSize(1);
        assertThat(d.errors().getFirst().toString()).contains("MeshConfig mesh: " + expected);
    }
}
