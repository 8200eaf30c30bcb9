package dev.wisp.base.admin;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.base.admin.AdminHttp.Caller;
import dev.wisp.base.admin.AdminHttp.Gate;
import dev.wisp.base.admin.AdminHttp.Refused;
import dev.wisp.base.admin.AdminHttp.Response;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** {@link Gate#loopbackOrBearer} decisions, and a gate and a streamed answer on a real listener. */
class AdminGateTest {
    static final String TOKEN = "0123456789abcdef-token";
    static final InetAddress REMOTE = InetAddress.ofLiteral("10.1.2.3");

    static Caller caller(InetAddress from, String authorization) {
        return new Caller(from, Optional.ofNullable(authorization));
    }

    static int status(Gate gate, Caller c) {
        try {
            gate.admit(c);
            return 200;
        } catch (Refused e) {
            return e.status();
        }
    }

    @Test
    void withoutATokenOnlyLoopbackIsAdmitted() {
        Gate g = Gate.loopbackOrBearer(Optional.empty());
        assertThat(status(g, caller(InetAddress.ofLiteral("127.0.0.1"), null))).isEqualTo(200);
        assertThat(status(g, caller(InetAddress.ofLiteral("::1"), null))).isEqualTo(200);
        assertThat(status(g, caller(REMOTE, null))).isEqualTo(403);
        // A token sent to a listener that has none configured admits nothing.
        assertThat(status(g, caller(REMOTE, "Bearer " + TOKEN))).isEqualTo(403);
        assertThatThrownBy(() -> g.admit(caller(REMOTE, null))).hasMessageContaining("localhost only")
                .hasMessageContaining("10.1.2.3");
    }

    @Test
    void withATokenARemoteCallerMustSendIt() {
        Gate g = Gate.loopbackOrBearer(Optional.of(TOKEN));
        assertThat(status(g, caller(REMOTE, "Bearer " + TOKEN))).isEqualTo(200);
        assertThat(status(g, caller(REMOTE, null))).isEqualTo(401);
        assertThat(status(g, caller(REMOTE, "Bearer " + TOKEN + "x"))).isEqualTo(401);
        assertThat(status(g, caller(REMOTE, "bearer " + TOKEN))).isEqualTo(401);
        assertThat(status(g, caller(REMOTE, TOKEN))).isEqualTo(401);
        assertThat(status(g, caller(InetAddress.getLoopbackAddress(), null))).isEqualTo(200);
    }

    @Test
    void aShortTokenIsRefused() {
        assertThatThrownBy(() -> Gate.loopbackOrBearer(Optional.of("short")))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("16 characters");
    }

    @Test
    void theGateRunsBeforeEveryEndpointAndStreamedAnswersArriveAsWritten() throws Exception {
        CountDownLatch second = new CountDownLatch(1);
        try (AdminHttp http = AdminHttp.start("test", new InetSocketAddress(InetAddress.getLoopbackAddress(), 0),
                AdminHttp.Access.LOOPBACK_ONLY, AdminHttp.routes()
                        .gate(c -> {
                            if (c.authorization().isEmpty()) {
                                throw new Refused(401, "who are you");
                            }
                        })
                        .get("/lines", r -> Response.streamed("application/x-ndjson", out -> {
                            out.write("{\"n\":1}\n".getBytes(StandardCharsets.UTF_8));
                            out.flush();
                            // The second line only after the client has read the first.
                            assertThat(second.await(10, TimeUnit.SECONDS)).isTrue();
                            out.write("{\"n\":2}\n".getBytes(StandardCharsets.UTF_8));
                        })))) {
            HttpClient client = HttpClient.newHttpClient();
            URI uri = URI.create("http://127.0.0.1:" + http.address().getPort() + "/lines");
            HttpResponse<String> refused = client.send(HttpRequest.newBuilder(uri).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(refused.statusCode()).isEqualTo(401);
            assertThat(refused.body()).contains("who are you");
            assertThat(client.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + http.address().getPort()
                    + "/none")).build(), HttpResponse.BodyHandlers.ofString()).statusCode()).isEqualTo(401);
            HttpResponse<java.io.InputStream> r = client.send(HttpRequest.newBuilder(uri).header("Authorization",
                    "x").build(), HttpResponse.BodyHandlers.ofInputStream());
            assertThat(r.statusCode()).isEqualTo(200);
            assertThat(r.headers().firstValue("Content-Type")).hasValue("application/x-ndjson");
            try (BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
                assertThat(in.readLine()).isEqualTo("{\"n\":1}");
                second.countDown();
                assertThat(in.readLine()).isEqualTo("{\"n\":2}");
                assertThat(in.readLine()).isNull();
            }
        }
        assertThatCode(second::countDown).doesNotThrowAnyException();
    }
}
