package dev.wisp.node.proxy;

import dev.wisp.spiffe.SpiffeId;
import static dev.wisp.node.Fixtures.sourceIpPolicy;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.api.workload.v1.Action;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.testing.LogCapture;
import dev.wisp.node.TwoAgents;
import dev.wisp.node.identity.Identities;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.telemetry.FlowRecord;
import dev.wisp.node.tls.HboneTls;
import dev.wisp.testing.RawHboneClient;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code forwarded: for=} spoofs against the real HBONE server of node n2 ({@link TwoAgents}), sent by
 * a scripted client ({@link RawHboneClient}) holding a mesh certificate and connecting from
 * 127.0.0.1, which is node n1's address. A claim counts only for a workload of n1 with the
 * certificate's identity ({@link SourceAddress}); otherwise policy and logs see 127.0.0.1.
 */
class ForwardedSpoofTest {
    static final String ROGUE_ID = "spiffe://cluster.local/ns/default/sa/rogue";
    static TwoAgents mesh;
    static Identities ids;
    static RawHboneClient raw;
    /** What n2's access log writes during one test. */
    final LogCapture access = new LogCapture("wisp.access");

    @BeforeAll
    static void start() throws Exception {
        mesh = new TwoAgents(Duration.ofSeconds(5));
        ids = Identities.local(mesh.ca, "n1");
        raw = new RawHboneClient();
    }

    @AfterAll
    static void stop() throws Exception {
        raw.close();
        ids.close();
        mesh.close();
    }

    @AfterEach
    void dropPoliciesAndTheCapture() throws Exception {
        access.close();
        mesh.apply(StateUpdates.AUTHORIZATION, List.of(), List.of("default/deny-n1-address", "default/allow-pod-a"));
    }

    /** Sends CONNECT to the echo workload (pod-b on n2) as {@code identity}, claiming {@code forwardedFor}. */
    static String connect(String identity, String forwardedFor) throws Exception {
        var headers = new DefaultHttp2Headers().method("CONNECT").authority(Hbone.authority(mesh.echo.address()))
                .add("forwarded", "for=\"" + forwardedFor + "\"");
        return raw.request(
                new HboneTls(ids).client(SpiffeId.parse(identity),
                        List.of(IdentityProvider.nodeId("cluster.local", "n2"))),
                mesh.n2.addresses().get("hbone"), headers);
    }

    static void policy(Resource p) throws Exception {
        mesh.apply(StateUpdates.AUTHORIZATION, List.of(p), List.of());
    }

    /** The inbound flow record on n2 that refused the last connection. */
    static FlowRecord lastInbound() {
        List<FlowRecord> flows = mesh.n2.telemetry().flows().since(0);
        return flows.getLast();
    }

    @Test
    void aClientDeniedByItsAddressIsStillDeniedWhenItClaimsAnother() throws Exception {
        policy(sourceIpPolicy("deny-n1-address", Action.DENY, "127.0.0.1"));
        assertThat(connect(TwoAgents.CLIENT_ID, "10.9.9.9:1")).as("HBONE answer").isEqualTo("401");
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(access.lines()).anyMatch(l -> l
                .startsWith("connection complete direction=inbound src.addr=127.0.0.1:")
                && l.contains("error=\"HBONE 401: denied by DENY policy default/deny-n1-address\"")));
        FlowRecord f = lastInbound();
        assertThat(f.sourceAddress()).startsWith("127.0.0.1:").doesNotContain("10.9.9.9");
        assertThat(f.verdict()).isEqualTo(FlowRecord.DENIED);
        assertThat(f.reason()).isEqualTo("denied by DENY policy default/deny-n1-address");
        assertThat(access.lines()).noneMatch(l -> l.contains("10.9.9.9"));
    }

    @Test
    void theClaimOfAWorkloadOfThePeersNodeWithItsIdentityCounts() throws Exception {
        // The same DENY on n1's address does not touch pod-a's connections: their source is pod-a.
        policy(sourceIpPolicy("deny-n1-address", Action.DENY, "127.0.0.1"));
        assertThat(connect(TwoAgents.CLIENT_ID, "127.0.0.4:5555")).as("HBONE answer").isEqualTo("200");
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(access.lines()).anyMatch(l -> l
                .startsWith("connection opened direction=inbound src.addr=127.0.0.4:5555 src.workload=pod-a")));
    }

    @Test
    void anAllowNamingOneWorkloadsAddressDoesNotAdmitAnotherIdentityClaimingIt() throws Exception {
        policy(sourceIpPolicy("allow-pod-a", Action.ALLOW, "127.0.0.4"));
        assertThat(connect(ROGUE_ID, "127.0.0.4:5555")).as("HBONE answer").isEqualTo("401");
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(access.lines()).anyMatch(l -> l
                .startsWith("connection complete direction=inbound src.addr=127.0.0.1:")
                && l.contains("src.identity=\"" + ROGUE_ID + "\"")
                && l.contains("error=\"HBONE 401: denied: no ALLOW policy matched\"")));
        assertThat(lastInbound().sourceAddress()).startsWith("127.0.0.1:");
        // pod-a's own identity is admitted by the same policy.
        assertThat(connect(TwoAgents.CLIENT_ID, "127.0.0.4:5556")).as("HBONE answer").isEqualTo("200");
    }
}
