package dev.wisp.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.cli.policy.PolicyCommand;
import dev.wisp.testing.ConfigYaml;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code wisp policy check}: verdicts, the deciding policy, exit codes, refused files. */
class PolicyCheckCommandTest {
    static final String POLICIES = ConfigYaml.pod("web-1", "shop", "app: web", "node-a", "web", "10.1.1.5") + """
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: front-only, namespace: shop}
            spec:
              selector: {matchLabels: {app: web}}
              action: ALLOW
              rules:
              - from: [{source: {namespaces: [front]}}]
                to: [{operation: {ports: ["8080"]}}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: no-batch, namespace: shop}
            spec:
              action: DENY
              rules:
              - from: [{source: {principals: [cluster.local/ns/front/sa/batch]}}]
            """;
    @TempDir
    Path dir;

    WispTest.Run check(String text, String... args) throws IOException {
        Path f = dir.resolve("policies.yaml");
        Files.writeString(f, text);
        List<String> all = new ArrayList<>(List.of("policy", "check", "-f", f.toString()));
        all.addAll(List.of(args));
        return WispTest.run(all.toArray(String[]::new));
    }

    @Test
    void allowedByTheMatchingAllowPolicy() throws IOException {
        WispTest.Run r = check(POLICIES, "--source-principal", "spiffe://cluster.local/ns/front/sa/web", "--source-ip",
                "10.1.2.3", "--destination", "10.1.1.5:8080");
        assertThat(r.exit()).as(r.err()).isEqualTo(PolicyCommand.ALLOW);
        assertThat(r.out()).startsWith("ALLOW allowed by ALLOW policy shop/front-only")
                .contains("destination: shop/web-1\n").contains("policies in scope:").contains("shop/no-batch");
    }

    @Test
    void deniedByTheDenyPolicyThatMatched() throws IOException {
        WispTest.Run r = check(POLICIES, "--source-principal", "cluster.local/ns/front/sa/batch", "--source-ip",
                "10.1.2.3",
                "--destination", "10.1.1.5:8080");
        assertThat(r.exit()).isEqualTo(PolicyCommand.DENY);
        assertThat(r.out()).startsWith("DENY denied by DENY policy shop/no-batch");
    }

    @Test
    void deniedWhenNoAllowPolicyMatches() throws IOException {
        WispTest.Run r = check(POLICIES, "--source-principal", "spiffe://cluster.local/ns/front/sa/web", "--source-ip",
                "10.1.2.3", "--destination", "10.1.1.5:9090");
        assertThat(r.exit()).isEqualTo(PolicyCommand.DENY);
        assertThat(r.out()).startsWith("DENY denied: no ALLOW policy matched");
    }

    @Test
    void aDestinationNotInTheFileIsAssumedFromTheCommandLine() throws IOException {
        String policiesOnly = POLICIES.substring(POLICIES.indexOf("---") + 4);
        WispTest.Run r = check(policiesOnly, "--source-principal", "spiffe://cluster.local/ns/other/sa/x",
                "--source-ip",
                "10.1.2.3", "--destination", "10.9.9.9:8080", "--destination-workload", "shop/web-2",
                "--destination-labels", "app=web");
        assertThat(r.exit()).isEqualTo(PolicyCommand.DENY);
        assertThat(r.out()).startsWith("DENY denied: no ALLOW policy matched")
                .contains("destination: shop/web-2 (assumed: not in the file)");
        WispTest.Run unnamed = check(policiesOnly, "--source-principal", "spiffe://cluster.local/ns/front/sa/x",
                "--source-ip",
                "10.1.2.3", "--destination", "10.9.9.9:8080");
        assertThat(unnamed.exit()).isEqualTo(UserException.INVALID);
        assertThat(unnamed.err()).contains("no pod in the file has address 10.9.9.9")
                .contains("--destination-workload NS/NAME");
    }

    @Test
    void anInvalidFileIsRefusedWithFileLineObjectAndField() throws IOException {
        WispTest.Run r = check(POLICIES.replace("action: DENY", "action: DENYY"), "--source-principal",
                "spiffe://cluster.local/ns/front/sa/web", "--source-ip", "10.1.2.3", "--destination",
                "10.1.1.5:8080");
        assertThat(r.exit()).isEqualTo(UserException.INVALID);
        assertThat(r.err()).contains(
                "policies.yaml:21 AuthorizationPolicy shop/no-batch: spec.action: 'DENYY' is not one of ALLOW, DENY, AUDIT, CUSTOM")
                .contains("is refused (1 error(s)); nothing checked");
        assertThat(r.out()).isEmpty();
    }

    @Test
    void badAddressesAreRefusedByOption() throws IOException {
        WispTest.Run r = check(POLICIES, "--source-principal", "x", "--source-ip", "example.com", "--destination",
                "10.1.1.5:8080");
        assertThat(r.exit()).isEqualTo(UserException.INVALID);
        assertThat(r.err()).contains("Invalid value for option '--source-ip': 'example.com' is not an IP address");
        WispTest.Run port = check(POLICIES, "--source-principal", "x", "--source-ip", "10.0.0.1", "--destination",
                "10.1.1.5:99999");
        assertThat(port.exit()).isEqualTo(UserException.INVALID);
        assertThat(port.err()).contains("Invalid value for option '--destination': '10.1.1.5:99999' is not HOST:PORT");
        WispTest.Run zero = check(POLICIES, "--source-principal", "x", "--source-ip", "10.0.0.1", "--destination",
                "10.1.1.5:0");
        assertThat(zero.exit()).isEqualTo(UserException.INVALID);
        assertThat(zero.err()).contains("--destination: port 0 is not a port a workload serves");
    }
}
