package dev.wisp.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code wisp policy check}: the agent's Authorizer over the control plane's translation. */
class PolicyCheckTest {
    static final String POLICIES = """
            apiVersion: v1
            kind: Pod
            metadata: {name: db-1, namespace: data, labels: {app: db}}
            spec: {nodeName: node-b}
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: db-from-web, namespace: data}
            spec:
              selector: {matchLabels: {app: db}}
              rules:
              - from: [{source: {principals: ["cluster.local/ns/shop/sa/web"]}}]
                to: [{operation: {ports: ["5432"]}}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: no-ssh, namespace: istio-system}
            spec:
              action: DENY
              rules: [{to: [{operation: {ports: ["22"]}}]}]
            """;

    @TempDir
    Path dir;

    WispTest.Run check(String principal, String destination) throws Exception {
        Path f = dir.resolve("policies.yaml");
        Files.writeString(f, POLICIES);
        return principal == null
                ? WispTest.run("policy", "check", "-f", f.toString(), "--source-ip", "10.1.1.5", "--destination",
                        destination, "--destination-workload", "data/db-1")
                : WispTest.run("policy", "check", "-f", f.toString(), "--source-principal", principal, "--source-ip",
                        "10.1.1.5", "--destination", destination, "--destination-workload", "data/db-1");
    }

    @Test
    void allowedByTheSelectorPolicy() throws Exception {
        WispTest.Run r = check("spiffe://cluster.local/ns/shop/sa/web", "10.1.2.7:5432");
        assertThat(r.exit()).isZero();
        assertThat(r.out()).isEqualTo("ALLOW: allowed by ALLOW policy data/db-from-web\n");
    }

    @Test
    void otherPrincipalIsDeniedForLackOfAnAllow() throws Exception {
        WispTest.Run r = check("spiffe://cluster.local/ns/shop/sa/other", "10.1.2.7:5432");
        assertThat(r.exit()).isEqualTo(3);
        assertThat(r.out()).isEqualTo("DENY: denied: no ALLOW policy matched\n");
    }

    @Test
    void meshWideDenyWins() throws Exception {
        WispTest.Run r = check("spiffe://cluster.local/ns/shop/sa/web", "10.1.2.7:22");
        assertThat(r.exit()).isEqualTo(3);
        assertThat(r.out()).isEqualTo("DENY: denied by DENY policy istio-system/no-ssh\n");
    }

    @Test
    void plaintextClientHasNoPrincipal() throws Exception {
        WispTest.Run r = check(null, "10.1.2.7:5432");
        assertThat(r.exit()).isEqualTo(3);
        assertThat(r.out()).startsWith("DENY: ");
    }

    @Test
    void invalidFileIsRefusedWithItsLine() throws Exception {
        Path f = dir.resolve("bad.yaml");
        Files.writeString(f, POLICIES.replace("action: DENY", "action: DENYY"));
        WispTest.Run r = WispTest.run("policy", "check", "-f", f.toString(), "--source-ip", "10.1.1.5",
                "--destination", "10.1.2.7:22");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).isEqualTo("error: bad.yaml:19 AuthorizationPolicy istio-system/no-ssh: spec.action: "
                + "'DENYY' is not one of ALLOW, DENY, AUDIT, CUSTOM\n");
    }
}
