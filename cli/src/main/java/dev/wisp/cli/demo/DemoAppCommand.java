package dev.wisp.cli.demo;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * The demo's application: a tiny HTTP server that answers with its pod's name, and a client that
 * calls a URL at a fixed interval and prints one line per call. Neither knows about the mesh: the
 * mesh captures their connections. Hidden from {@code wisp --help}.
 */
@Command(name = "demo-app", hidden = true, description = "The demo's mesh-unaware application (server or client).", mixinStandardHelpOptions = true, subcommands = {
        DemoAppCommand.Server.class, DemoAppCommand.Client.class})
public final class DemoAppCommand {
    @Command(name = "server", mixinStandardHelpOptions = true, description = "Answer HTTP GET / with a greeting.")
    static final class Server implements Callable<Integer> {
        @Option(names = "--port", defaultValue = "8080", description = "Port to listen on (default: ${DEFAULT-VALUE}).")
        int port;

        @Option(names = "--name", required = true, description = "Name to answer with (the pod's name).")
        String name;

        @Override
        public Integer call() throws IOException, InterruptedException {
            HttpServer server = HttpServer.create(new InetSocketAddress(port), 64);
            server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
            server.createContext("/", ex -> {
                byte[] body = ("hello from " + name + "\n").getBytes(StandardCharsets.UTF_8);
                ex.getResponseHeaders().add("Content-Type", "text/plain");
                ex.sendResponseHeaders(200, body.length);
                ex.getResponseBody().write(body);
                ex.close();
            });
            server.start();
            System.out.println("demo-app server " + name + " listening on :" + port);
            CountDownLatch stop = new CountDownLatch(1);
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                server.stop(0);
                stop.countDown();
            }));
            stop.await();
            return 0;
        }
    }

    @Command(name = "client", mixinStandardHelpOptions = true, description = "GET a URL at a fixed interval and print one line per call.")
    static final class Client implements Callable<Integer> {
        @Option(names = "--url", required = true, description = "URL to call, e.g. http://10.201.1.10:8080/.")
        URI url;

        @Option(names = "--interval", defaultValue = "PT1S", description = "Time between calls, ISO-8601 (default: ${DEFAULT-VALUE}).")
        Duration interval;

        @Option(names = "--count", defaultValue = "0", description = "Stop after this many calls (0: never).")
        long count;

        @Option(names = "--timeout", defaultValue = "PT3S", description = "How long one call may take, ISO-8601 (default: ${DEFAULT-VALUE}).")
        Duration timeout;

        @Option(names = "--header", paramLabel = "NAME:VALUE", description = "A request header to send with each call (repeatable).")
        List<String> headers = List.of();

        @Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws InterruptedException {
            for (String h : headers) {
                if (h.indexOf(':') < 1) {
                    throw new CommandLine.ParameterException(spec.commandLine(), "--header " + h
                            + ": expected NAME:VALUE");
                }
            }
            PrintWriter out = spec.commandLine().getOut();
            // A new client per call: every call is a new TCP connection, so each call shows up as a
            // connection in the mesh's flows and metrics.
            DateTimeFormatter t = DateTimeFormatter.ofPattern("HH:mm:ss");
            long failures = 0;
            for (long i = 1; count == 0 || i <= count; i++) {
                String line;
                try (HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).version(
                        HttpClient.Version.HTTP_1_1).build()) {
                    HttpRequest.Builder req = HttpRequest.newBuilder(url).timeout(timeout);
                    for (String h : headers) {
                        int colon = h.indexOf(':');
                        req.header(h.substring(0, colon).strip(), h.substring(colon + 1).strip());
                    }
                    HttpResponse<String> r = http.send(req.build(), HttpResponse.BodyHandlers.ofString());
                    line = "ok " + r.statusCode() + " " + r.body().strip();
                    if (r.statusCode() != 200) {
                        failures++;
                    }
                } catch (IOException e) {
                    failures++;
                    line = "failed " + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage());
                }
                out.println(LocalTime.now().format(t) + " call " + i + " " + line);
                out.flush();
                if (count == 0 || i < count) {
                    TimeUnit.MILLISECONDS.sleep(interval.toMillis());
                }
            }
            return failures == 0 ? 0 : 1;
        }
    }
}
