package dev.wisp.node.proxy;

import static dev.wisp.node.Fixtures.ports;
import static dev.wisp.node.Fixtures.res;
import static dev.wisp.node.Fixtures.workload;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.api.workload.v1.GatewayAddress;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.node.Fixtures;
import dev.wisp.node.TwoAgents;
import dev.wisp.node.identity.Identities;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.telemetry.FlowRecord;
import dev.wisp.node.tls.HboneTls;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.testing.LogCapture;
import dev.wisp.testing.RawHboneClient;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A destination behind a waypoint refuses every other peer, against node n2's real HBONE server
 * ({@link TwoAgents}): pod-b backs the service {@code echo.svc}, whose {@code waypoint} is the pod
 * {@code wp} (service account {@code waypoint}). A scripted client ({@link RawHboneClient}) holding a
 * mesh certificate dials pod-b directly, as a client that skips the waypoint would, or as an identity
 * that claims to be the waypoint by its {@code forwarded} header or its service account's name.
 */
class WaypointBypassTest {
    static final String WAYPOINT_ID = "spiffe://cluster.local/ns/default/sa/waypoint";
    @AutoClose
    static final TwoAgents MESH = TwoAgents.started(Duration.ofSeconds(5));
    @AutoClose
    static final RawHboneClient RAW = new RawHboneClient();
    @AutoClose
    final LogCapture access = new LogCapture("wisp.access");

    @BeforeAll
    static void echoIsBehindTheWaypoint() throws Exception {
        int echoPort = MESH.echo.address().getPort();
        Resource svc = Fixtures.service("echo.svc", "10.96.0.1", 80, echoPort);
        MESH.apply(StateUpdates.SERVICE, List.of(svc.toBuilder().setService(svc.getService().toBuilder().setWaypoint(
                GatewayAddress.newBuilder().setAddress(Fixtures.ip("127.0.0.5")).setHbonePort(15008).setIdentity(
                        WAYPOINT_ID)))
                .build()), List.of());
        MESH.apply(StateUpdates.WORKLOAD, List.of(res(workload("wp", "waypoint", "n1", "127.0.0.5")),
                res(workload("pod-b", "server", "n2", "127.0.0.3").putServices("default/echo.svc",
                        ports(80, echoPort)))),
                List.of());
    }

    /** The HBONE answer to a CONNECT to pod-b from {@code identity}, with a {@code forwarded} claim when not null. */
    static String dialPodB(String identity, String forwardedFor) throws Exception {
        var connect = new DefaultHttp2Headers().method("CONNECT").authority(Hbone.authority(MESH.echo.address()));
        if (forwardedFor != null) {
            connect.add("forwarded", "for=\"" + forwardedFor + "\"");
        }
        try (Identities ids = Identities.local(MESH.ca, "n1")) {
            SpiffeId me = SpiffeId.parse(identity);
            return RAW.request(new HboneTls(ids).client(me, List.of(IdentityProvider.nodeId("cluster.local", "n2"))),
                    MESH.n2.addresses().get("hbone"), connect);
        }
    }

    static FlowRecord lastInbound() {
        return MESH.n2.telemetry().flows().since(0).getLast();
    }

    @Test
    void aClientThatDialsThePodDirectlyIsRefusedAsBypassingTheWaypoint() throws Exception {
        assertThat(dialPodB(TwoAgents.CLIENT_ID, null)).as("HBONE answer").isEqualTo("401");
        String reason = "bypassed waypoint: workload default/pod-b takes traffic only from its waypoint ["
                + WAYPOINT_ID + "], not from " + TwoAgents.CLIENT_ID;
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(access.lines()).anyMatch(l -> l
                .startsWith("connection complete direction=inbound ") && l.contains("dst.workload=pod-b")
                && l.contains("error=\"HBONE 401: " + reason + "\"")));
        FlowRecord f = lastInbound();
        assertThat(f.verdict()).isEqualTo(FlowRecord.DENIED);
        assertThat(f.reason()).isEqualTo(reason);
    }

    @Test
    void anIdentityClaimingToBeTheWaypointByItsHeaderOrItsAccountsNameIsRefused() throws Exception {
        assertThat(dialPodB("spiffe://cluster.local/ns/default/sa/rogue", "127.0.0.5:40000"))
                .as("forwarded for= the waypoint's address").isEqualTo("401");
        assertThat(lastInbound().reason()).startsWith("bypassed waypoint:")
                .endsWith("not from spiffe://cluster.local/ns/default/sa/rogue");
        assertThat(dialPodB("spiffe://cluster.local/ns/other/sa/waypoint", null))
                .as("service account 'waypoint' of another namespace").isEqualTo("401");
        assertThat(lastInbound().reason()).startsWith("bypassed waypoint:");
    }

    @Test
    void theWaypointsOwnCertificatePasses() throws Exception {
        assertThat(dialPodB(WAYPOINT_ID, null)).as("HBONE answer").isEqualTo("200");
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(access.lines()).anyMatch(l -> l
                .startsWith("connection opened direction=inbound ")
                && l.contains("src.identity=\"" + WAYPOINT_ID
                        + "\"")
                && l.contains("dst.workload=pod-b")));
    }
}
