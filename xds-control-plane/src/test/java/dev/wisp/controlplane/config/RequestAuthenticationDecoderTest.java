package dev.wisp.controlplane.config;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.controlplane.model.RequestAuthentication;
import dev.wisp.controlplane.model.RequestAuthentication.JwtRule;
import java.net.URI;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Istio's RequestAuthentication through the one decoder both configuration sources use. */
class RequestAuthenticationDecoderTest {
    private static final String HEAD = """
            apiVersion: security.istio.io/v1
            kind: RequestAuthentication
            metadata: {name: jwt, namespace: shop}
            spec:
            """;

    @Test
    void everyJwtRuleFieldIsDecoded() {
        ConfigDecoder.Decoded d = ConfigDecoder.decode("ra.yaml", HEAD + """
                  selector: {matchLabels: {app: web}}
                  jwtRules:
                  - issuer: https://issuer.example
                    audiences: [shop, admin]
                    jwksUri: https://issuer.example/.well-known/jwks.json
                    fromHeaders: [{name: X-Jwt, prefix: "Bearer "}]
                    fromParams: [token]
                    forwardOriginalToken: true
                  - issuer: inline
                    jwks: '{"keys": []}'
                """);
        assertThat(d.errors()).isEmpty();
        assertThat(d.objects()).singleElement().isEqualTo(new RequestAuthentication(
                new dev.wisp.controlplane.model.ObjectRef(RequestAuthentication.KIND, "shop", "jwt"),
                Map.of("app", "web"), List.of(
                        new JwtRule("https://issuer.example", List.of("shop", "admin"),
                                URI.create("https://issuer.example/.well-known/jwks.json"), null,
                                Map.of("x-jwt", "Bearer "), List.of("token"), true),
                        new JwtRule("inline", List.of(), null, "{\"keys\": []}", Map.of(), List.of(), false)),
                List.of()));
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', textBlock = """
            no issuer          | `  jwtRules: [{audiences: [a]}]`                                    | 5:spec.jwtRules[0].issuer: required: the token's iss claim
            keys twice         | `  jwtRules: [{issuer: i, jwksUri: "https://i/k", jwks: "{}"}]`      | 5:spec.jwtRules[0].jwks: give the keys once: jwksUri or jwks, not both
            not a url          | `  jwtRules: [{issuer: i, jwksUri: "ftp://i/k"}]`                    | 5:spec.jwtRules[0].jwksUri: 'ftp://i/k' is not an http(s) URL such as https://issuer.example/.well-known/jwks.json, or a file:///absolute/path
            bad header name    | `  jwtRules: [{issuer: i, fromHeaders: [{name: "a b"}]}]`             | 5:spec.jwtRules[0].fromHeaders[0].name: 'a b' is not a header name
            unknown field      | `  jwtRules: [{issuer: i, jwksUrl: "https://i/k"}]`                  | 5:spec.jwtRules[0].jwksUrl: unknown field; expected one of audiences, forwardOriginalToken, fromHeaders, fromParams, issuer, jwks, jwksUri
            target of a pod    | `  targetRefs: [{kind: Pod, name: x}]`                              | 5:spec.targetRefs[0]: attaches to kind Pod of group ''; Wisp's waypoint takes kind Gateway (group gateway.networking.k8s.io) or Service (group "")
            not a boolean      | `  jwtRules: [{issuer: i, forwardOriginalToken: yes}]`               | 5:spec.jwtRules[0].forwardOriginalToken: 'yes' is not true or false
            """)
    void mistakesAreRefusedNamingTheField(String title, String specLine, String expected) {
        ConfigDecoderTest.assertRefused("ra.yaml", HEAD + specLine + "\n", "RequestAuthentication shop/jwt", expected);
    }
}
