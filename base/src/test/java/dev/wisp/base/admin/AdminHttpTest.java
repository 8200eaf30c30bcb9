package dev.wisp.base.admin;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.base.admin.AdminHttp.Access;
import dev.wisp.base.admin.AdminHttp.Response;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class AdminHttpTest {
    static AdminHttp http;
    static final HttpClient CLIENT = HttpClient.newHttpClient();

    @BeforeAll
    static void start() throws Exception {
        http = AdminHttp.start("test", new InetSocketAddress(InetAddress.getLoopbackAddress(), 0),
                Access.LOOPBACK_ONLY, AdminHttp.routes()
                        .get("/hello", r -> Response.text(200, "hello " + r.query().getOrDefault("name", "?")))
                        .post("/echo", r -> Response.json(200, "{\"got\": \"" + r.body(8) + "\"}"))
                        .get("/bad", r -> {
                            throw new IllegalArgumentException("since: 'x' is not a number");
                        })
                        .get("/teapot", r -> {
                            throw new AdminHttp.Refused(418, "short and stout");
                        })
                        .get("/broken", r -> {
                            throw new IllegalStateException("bug");
                        })
                        .errors((status, message) -> Response.json(status, "{\"error\": \"" + message + "\"}")));
    }

    @AfterAll
    static void stop() {
        http.close();
    }

    static HttpResponse<String> send(String method, String pathAndQuery, String body) throws Exception {
        return CLIENT.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + http.address().getPort()
                + pathAndQuery)).method(method, HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void routesByExactPathWithDecodedQuery() throws Exception {
        HttpResponse<String> r = send("GET", "/hello?name=node%201", "");
        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(r.body()).isEqualTo("hello node 1");
        assertThat(r.headers().firstValue("Content-Type")).hasValue("text/plain; charset=utf-8");
        assertThat(send("POST", "/echo", "abc").body()).isEqualTo("{\"got\": \"abc\"}");
    }

    @Test
    void unknownPathIs404AndWrongMethodIs405NamingTheRightOne() throws Exception {
        HttpResponse<String> missing = send("GET", "/hello/more", "");
        assertThat(missing.statusCode()).isEqualTo(404);
        assertThat(missing.body()).isEqualTo("{\"error\": \"no such endpoint: /hello/more\"}");
        HttpResponse<String> wrong = send("GET", "/echo", "");
        assertThat(wrong.statusCode()).isEqualTo(405);
        assertThat(wrong.headers().firstValue("Allow")).hasValue("POST");
        assertThat(wrong.body()).contains("use POST /echo");
    }

    @Test
    void handlerRefusalsKeepTheirStatusAndMessage() throws Exception {
        assertThat(send("GET", "/bad", "")).satisfies(r -> {
            assertThat(r.statusCode()).isEqualTo(400);
            assertThat(r.body()).contains("since: 'x' is not a number");
        });
        assertThat(send("GET", "/teapot", "").statusCode()).isEqualTo(418);
        assertThat(send("POST", "/echo", "123456789")).satisfies(r -> {
            assertThat(r.statusCode()).isEqualTo(413);
            assertThat(r.body()).contains("larger than 8 bytes");
        });
        assertThat(send("GET", "/broken", "")).satisfies(r -> {
            assertThat(r.statusCode()).isEqualTo(500);
            assertThat(r.body()).contains("internal error: bug");
        });
    }

    @Test
    void aLoopbackOnlyListenerRefusesAnyOtherAddress() {
        assertThatThrownBy(() -> AdminHttp.start("admin", new InetSocketAddress(InetAddress.ofLiteral("0.0.0.0"), 0),
                Access.LOOPBACK_ONLY, AdminHttp.routes())).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("the admin API listens on localhost only");
    }

    @Test
    void aBusyPortIsNamedInTheError() {
        assertThatThrownBy(() -> AdminHttp.start("metrics", http.address(), Access.ANY, AdminHttp.routes()))
                .hasMessageContaining("cannot listen for the metrics API on").hasMessageContaining(
                        String.valueOf(http.address().getPort()));
    }
}
