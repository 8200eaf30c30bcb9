package dev.wisp.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import dev.wisp.api.workload.v1.Action;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.telemetry.FlowLog;
import dev.wisp.node.telemetry.FlowRecord;
import dev.wisp.testing.Socks5Client;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.Test;

/**
 * {@code /flows} on two real agents: a call carried over HBONE shows on both sides with both
 * identities and its bytes, a call denied by policy shows as denied with the policy's reason, and
 * {@code ?since=} returns only what is new.
 */
class FlowsEndpointTest {
    @AutoClose
    static final TwoAgents mesh = TwoAgents.started(Duration.ofSeconds(5));
    @AutoClose
    static final HttpClient http = HttpClient.newHttpClient();

    static HttpResponse<String> get(NodeRuntime agent, String query) throws Exception {
        URI uri = URI.create("http://127.0.0.1:" + agent.addresses().get("admin").getPort() + "/flows" + query);
        return http.send(HttpRequest.newBuilder(uri).build(), HttpResponse.BodyHandlers.ofString());
    }

    static List<FlowRecord> connections(NodeRuntime agent, long since) throws Exception {
        HttpResponse<String> r = get(agent, "?since=" + since);
        assertThat(r.statusCode()).isEqualTo(200);
        JsonNode body = FlowLog.JSON.readTree(r.body());
        List<FlowRecord> out = new ArrayList<>();
        for (JsonNode n : body.get("connections")) {
            out.add(FlowLog.parse(n));
        }
        return out;
    }

    static void echo(byte[] payload) throws Exception {
        Socks5Client.Result r = Socks5Client.connect(mesh.socks(), mesh.echo.address());
        assertThat(r.reply()).as("SOCKS5 reply").isZero();
        try (Socket s = r.socket()) {
            s.getOutputStream().write(payload);
            s.shutdownOutput();
            assertThat(s.getInputStream().readAllBytes()).isEqualTo(payload);
        }
    }

    @Test
    void aCallShowsOnBothSidesWithIdentitiesAndBytes() throws Exception {
        long since1 = mesh.n1.telemetry().flows().last();
        long since2 = mesh.n2.telemetry().flows().last();
        echo("hello flows".getBytes(StandardCharsets.UTF_8));
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
            assertThat(connections(mesh.n1, since1)).singleElement().satisfies(f -> {
                assertThat(f.reporter()).isEqualTo("source");
                assertThat(f.sourceWorkload()).isEqualTo("pod-a");
                assertThat(f.sourceIdentity()).isEqualTo(TwoAgents.CLIENT_ID);
                assertThat(f.destinationWorkload()).isEqualTo("pod-b");
                assertThat(f.destinationIdentity()).isEqualTo(TwoAgents.SERVER_ID);
                assertThat(f.destinationAddress()).isEqualTo("127.0.0.3:" + mesh.echo.address().getPort());
                assertThat(f.mtls()).isTrue();
                assertThat(f.protocol()).as("carried by HBONE over HTTP/2").isEqualTo("h2");
                assertThat(f.verdict()).isEqualTo(FlowRecord.ALLOWED);
                assertThat(f.bytesSent()).isEqualTo(11);
                assertThat(f.bytesReceived()).isEqualTo(11);
                assertThat(f.durationMillis()).isNotNegative();
            });
            assertThat(connections(mesh.n2, since2)).singleElement().satisfies(f -> {
                assertThat(f.reporter()).isEqualTo("destination");
                assertThat(f.sourceIdentity()).as("proved by the client certificate").isEqualTo(TwoAgents.CLIENT_ID);
                assertThat(f.destinationIdentity()).isEqualTo(TwoAgents.SERVER_ID);
                assertThat(f.protocol()).isEqualTo("h2");
                assertThat(f.verdict()).isEqualTo(FlowRecord.ALLOWED);
                assertThat(f.bytesSent()).isEqualTo(11);
                assertThat(f.bytesReceived()).isEqualTo(11);
            });
        });
    }

    @Test
    void aDeniedCallShowsDeniedWithThePolicy() throws Exception {
        long since2 = mesh.n2.telemetry().flows().last();
        long since1 = mesh.n1.telemetry().flows().last();
        String client = TwoAgents.CLIENT_ID.substring("spiffe://".length());
        try {
            mesh.apply(StateUpdates.AUTHORIZATION, List.of(Fixtures.principalPolicy("deny-flows", Action.DENY,
                    client)), List.of());
            assertThat(Socks5Client.connect(mesh.socks(), mesh.echo.address()).reply()).isEqualTo(2);
            await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
                assertThat(connections(mesh.n2, since2)).singleElement().satisfies(f -> {
                    assertThat(f.verdict()).isEqualTo(FlowRecord.DENIED);
                    assertThat(f.reason()).contains("deny-flows");
                    assertThat(f.sourceIdentity()).isEqualTo(TwoAgents.CLIENT_ID);
                    assertThat(f.bytesSent()).isZero();
                });
                assertThat(connections(mesh.n1, since1)).singleElement()
                        .satisfies(f -> assertThat(f.verdict()).isEqualTo(FlowRecord.DENIED));
            });
        } finally {
            mesh.apply(StateUpdates.AUTHORIZATION, List.of(), List.of("default/deny-flows"));
        }
    }

    @Test
    void captureEventsStayUnderTheirOriginalKeyBesideTheConnections() throws Exception {
        mesh.n2.captureEvents(() -> "[{\"type\": \"OPENED\", \"redirected\": true}]");
        JsonNode body = FlowLog.JSON.readTree(get(mesh.n2, "").body());
        assertThat(body.get("flows")).singleElement().satisfies(f -> {
            assertThat(f.get("type").asText()).isEqualTo("OPENED");
            assertThat(f.get("redirected").asBoolean()).isTrue();
        });
        assertThat(body.get("connections").isArray()).isTrue();
        assertThat(body.get("node").asText()).isEqualTo("n2");
    }

    @Test
    void sinceMustBeANumberAndTheNodeIsNamed() throws Exception {
        assertThat(get(mesh.n1, "?since=x").statusCode()).isEqualTo(400);
        JsonNode body = FlowLog.JSON.readTree(get(mesh.n1, "").body());
        assertThat(body.get("node").asText()).isEqualTo("n1");
        assertThat(body.get("last_seq").asLong()).isEqualTo(mesh.n1.telemetry().flows().last());
        assertThat(body.has("flows")).as("no capture events without capture").isFalse();
    }
}
