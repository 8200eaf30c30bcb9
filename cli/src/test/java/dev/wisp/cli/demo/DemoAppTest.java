package dev.wisp.cli.demo;

import static org.assertj.core.api.Assertions.assertThat;

import com.sun.net.httpserver.HttpServer;
import dev.wisp.cli.Wisp;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class DemoAppTest {
    @Test
    void clientPrintsOneLinePerCallAndFailsWhenACallFails() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/", ex -> {
            int n = calls.incrementAndGet();
            byte[] body = "hello from server\n".getBytes(StandardCharsets.UTF_8);
            ex.sendResponseHeaders(n == 2 ? 503 : 200, body.length);
            ex.getResponseBody().write(body);
            ex.close();
        });
        server.start();
        try {
            CommandLine cl = Wisp.commandLine();
            StringWriter out = new StringWriter();
            cl.setOut(new PrintWriter(out));
            int exit = cl.execute("demo-app", "client", "--url", "http://127.0.0.1:" + server.getAddress().getPort()
                    + "/", "--interval", "PT0.01S", "--count", "3");
            String[] lines = out.toString().strip().split("\n");
            assertThat(lines).hasSize(3);
            assertThat(lines[0]).matches("\\d\\d:\\d\\d:\\d\\d call 1 ok 200 hello from server");
            assertThat(lines[1]).contains("call 2 ok 503");
            assertThat(exit).isEqualTo(1);
            assertThat(calls.get()).isEqualTo(3);
        } finally {
            server.stop(0);
        }
    }

    @Test
    void clientReportsConnectionFailures() throws Exception {
        int port;
        try (var s = new java.net.ServerSocket(0)) {
            port = s.getLocalPort();
        }
        CommandLine cl = Wisp.commandLine();
        StringWriter out = new StringWriter();
        cl.setOut(new PrintWriter(out));
        int exit = cl.execute("demo-app", "client", "--url", "http://127.0.0.1:" + port + "/", "--count", "1");
        assertThat(exit).isEqualTo(1);
        assertThat(out.toString()).contains("call 1 failed");
    }

    @Test
    void hiddenFromTopLevelHelp() {
        CommandLine cl = Wisp.commandLine();
        assertThat(cl.getUsageMessage()).doesNotContain("demo-app");
    }
}
