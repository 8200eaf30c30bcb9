package dev.wisp.spiffe;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class SpiffeIdTest {
    @Test
    void parsesAKubernetesWorkloadIdentity() {
        SpiffeId id = SpiffeId.parse("spiffe://cluster.local/ns/shop/sa/cart");
        assertThat(id.trustDomain()).isEqualTo("cluster.local");
        assertThat(id.path()).isEqualTo("/ns/shop/sa/cart");
        assertThat(id.namespace()).contains("shop");
        assertThat(id.serviceAccount()).contains("cart");
        assertThat(id.principal()).isEqualTo("cluster.local/ns/shop/sa/cart");
        assertThat(id).hasToString("spiffe://cluster.local/ns/shop/sa/cart");
    }

    @Test
    void buildsFromServiceAccountAndComparesByValue() {
        SpiffeId a = SpiffeId.forServiceAccount("example.org", "default", "web");
        SpiffeId b = SpiffeId.parse("spiffe://example.org/ns/default/sa/web");
        assertThat(a).isEqualTo(b).hasSameHashCodeAs(b);
        assertThat(a).isNotEqualTo(SpiffeId.parse("spiffe://example.org/ns/default/sa/api"));
    }

    @Test
    void otherPathsHaveNoNamespace() {
        assertThat(SpiffeId.parse("spiffe://td/ns/a/sa/b/extra").namespace()).isEmpty();
        assertThat(SpiffeId.parse("spiffe://td/workload/x").serviceAccount()).isEmpty();
        assertThat(SpiffeId.parse("spiffe://td").path()).isEmpty();
        assertThat(SpiffeId.forTrustDomain("td")).hasToString("spiffe://td");
    }

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource(delimiter = '|', value = {"''|it is empty",
            "http://td/ns/a/sa/b|the scheme must be 'spiffe://' (lower case), found 'http'",
            "SPIFFE://td/ns/a/sa/b|the scheme must be 'spiffe://' (lower case), found 'SPIFFE'",
            "td/ns/a|the scheme must be 'spiffe://' (lower case), found none",
            "spiffe:///ns/a/sa/b|the trust domain is empty",
            "spiffe://Cluster.local/ns/a|character 'C' at position 0: upper case is not allowed",
            "spiffe://td:8080/ns/a|a port is not allowed", "spiffe://user@td/ns/a|user info is not allowed",
            "spiffe://t%41d/x|percent-encoding is not allowed",
            "spiffe://td/ns//sa/b|the path has an empty segment ('//')",
            "spiffe://td/ns/a/sa/b/|the path must not end with '/'", "spiffe://td/|the path must not end with '/'",
            "spiffe://td/ns/./sa/b|the path has a '.' segment", "spiffe://td/ns/../sa/b|the path has a '..' segment",
            "spiffe://td/ns/a%2Fb|percent-encoding is not allowed",
            "spiffe://td/ns/a?x=1|a query or fragment is not allowed",
            "spiffe://td/ns/a#frag|a query or fragment is not allowed",
            "spiffe://td/ns/a b|only a-z, A-Z, 0-9, '.', '-' and '_' are allowed"})
    void refusesInvalidIdsNamingTheProblem(String input, String problem) {
        assertThatThrownBy(() -> SpiffeId.parse(input)).isInstanceOf(InvalidSpiffeIdException.class)
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(problem)
                .hasMessageStartingWith("invalid SPIFFE ID '" + input + "'");
    }

    @Test
    void refusesOverlongIds() {
        String longPath = "/x".repeat(1100);
        assertThatThrownBy(() -> SpiffeId.parse("spiffe://td" + longPath))
                .hasMessageContaining("longer than 2048 bytes");
        assertThatThrownBy(() -> SpiffeId.requireTrustDomain("a".repeat(256)))
                .hasMessageContaining("the trust domain is longer than 255 characters");
    }

    @Test
    void serviceAccountHelperValidatesItsParts() {
        assertThatThrownBy(() -> SpiffeId.forServiceAccount("td", "a/b", "c"))
                .hasMessageContaining("spiffe://td/ns/a/b/sa/c").isInstanceOf(InvalidSpiffeIdException.class);
        assertThatThrownBy(() -> SpiffeId.forServiceAccount("TD", "a", "c"))
                .hasMessageContaining("upper case is not allowed");
    }
}
