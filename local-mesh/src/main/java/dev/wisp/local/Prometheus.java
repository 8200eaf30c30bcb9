package dev.wisp.local;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A real Prometheus server (Debian's {@code prometheus}) scraping the mesh: this class writes its
 * scrape configuration, runs it on a loopback port with a private data directory, and answers
 * PromQL queries through its HTTP API. Used by {@code wisp demo --prometheus} and the tests.
 */
public final class Prometheus implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Prometheus.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Process process;
    private final Path dataDir;
    private final InetSocketAddress listen;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

    /** A scrape job: a name and its {@code host:port} targets, each with labels (e.g. node). */
    public record Job(String name, List<Target> targets) {
        public Job {
            requireNonNull(name, "name");
            targets = List.copyOf(targets);
        }
    }

    public record Target(String address, Map<String, String> labels) {
        public Target {
            requireNonNull(address, "address");
            labels = Map.copyOf(labels);
        }
    }

    private Prometheus(Process process, Path dataDir, InetSocketAddress listen) {
        this.process = process;
        this.dataDir = dataDir;
        this.listen = listen;
    }

    /**
     * Starts Prometheus on {@code 127.0.0.1:port}, scraping {@code jobs} every second, and waits
     * (up to 30 s) until it is ready.
     */
    public static Prometheus start(List<Job> jobs, int port, Path workDir) throws IOException {
        return start(jobs, new InetSocketAddress("127.0.0.1", port), workDir, ProcessBuilder::new);
    }

    /**
     * Starts Prometheus listening on {@code listen}, its command wrapped by {@code launcher} (e.g.
     * to run it inside a network namespace: {@link LocalCluster#onUnderlay}), scraping {@code jobs}
     * every second, and waits (up to 30 s) until this JVM sees it ready at {@code listen}.
     */
    public static Prometheus start(List<Job> jobs, InetSocketAddress listen, Path workDir,
            Function<List<String>, ProcessBuilder> launcher) throws IOException {
        requireNonNull(jobs, "jobs");
        requireNonNull(listen, "listen");
        requireNonNull(workDir, "workDir");
        requireNonNull(launcher, "launcher");
        Path binary = Path.of("/usr/bin/prometheus");
        if (!Files.isExecutable(binary)) {
            throw new ClusterException("prometheus is not installed (Debian package 'prometheus'; "
                    + "scripts/install-deps.sh installs it)");
        }
        Files.createDirectories(workDir);
        Path config = workDir.resolve("prometheus.yml");
        Files.writeString(config, config(jobs));
        Path data = workDir.resolve("data");
        Path logFile = workDir.resolve("prometheus.log");
        Process p = launcher.apply(List.of(binary.toString(), "--config.file=" + config, "--storage.tsdb.path="
                + data,
                "--web.listen-address=" + AddressPlan.hostPort(listen.getAddress().getHostAddress(), listen
                        .getPort())))
                .redirectErrorStream(true).redirectOutput(logFile.toFile()).start();
        Prometheus prom = new Prometheus(p, data, listen);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!prom.ready()) {
            if (!p.isAlive()) {
                throw new ClusterException("prometheus exited (" + p.exitValue() + "); see " + logFile);
            }
            if (System.nanoTime() > deadline) {
                prom.close();
                throw new ClusterException("prometheus not ready on " + prom.url() + " after 30 s; see " + logFile);
            }
            p.onExit().completeOnTimeout(p, 200, TimeUnit.MILLISECONDS).join();
        }
        log.info("prometheus ready at {}", prom.url());
        return prom;
    }

    /** The scrape configuration for {@code jobs}: 1 s interval, the given labels per target. */
    static String config(List<Job> jobs) {
        StringBuilder y = new StringBuilder("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                + "scrape_configs:\n");
        for (Job job : jobs) {
            y.append("  - job_name: ").append(quote(job.name())).append('\n');
            y.append("    static_configs:\n");
            for (Target t : job.targets()) {
                y.append("      - targets: [").append(quote(t.address())).append("]\n");
                if (!t.labels().isEmpty()) {
                    y.append("        labels:\n");
                    t.labels().entrySet().stream().sorted(Map.Entry.comparingByKey()).forEach(e -> y.append(
                            "          ").append(e.getKey()).append(": ").append(quote(e.getValue())).append('\n'));
                }
            }
        }
        return y.toString();
    }

    private static String quote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    /** The web UI and API base URL. */
    public String url() {
        return "http://" + AddressPlan.hostPort(listen.getAddress().getHostAddress(), listen.getPort());
    }

    boolean ready() {
        try {
            HttpResponse<Void> r = http.send(HttpRequest.newBuilder(URI.create(url() + "/-/ready")).timeout(Duration
                    .ofSeconds(2)).build(), HttpResponse.BodyHandlers.discarding());
            return r.statusCode() == 200;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** One sample of an instant-vector result. */
    public record Sample(Map<String, String> labels, double value) {}

    /** Evaluates {@code promql} now; returns the vector's samples (empty when nothing matches). */
    public List<Sample> query(String promql) throws IOException {
        requireNonNull(promql, "promql");
        String uri = url() + "/api/v1/query?query=" + URLEncoder.encode(promql, StandardCharsets.UTF_8);
        HttpResponse<String> r;
        try {
            r = http.send(HttpRequest.newBuilder(URI.create(uri)).timeout(Duration.ofSeconds(5)).build(),
                    HttpResponse.BodyHandlers.ofString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted querying prometheus", e);
        }
        JsonNode body = JSON.readTree(r.body());
        if (r.statusCode() != 200 || !"success".equals(body.path("status").asText())) {
            throw new IOException("prometheus refused '" + promql + "': " + body.path("error").asText(r.body()));
        }
        JsonNode data = body.path("data");
        List<Sample> out = new ArrayList<>();
        if ("vector".equals(data.path("resultType").asText())) {
            for (JsonNode s : data.path("result")) {
                Map<String, String> labels = new java.util.TreeMap<>();
                s.path("metric").fields().forEachRemaining(e -> labels.put(e.getKey(), e.getValue().asText()));
                out.add(new Sample(labels, Double.parseDouble(s.path("value").get(1).asText())));
            }
        } else if ("scalar".equals(data.path("resultType").asText())) {
            out.add(new Sample(Map.of(), Double.parseDouble(data.path("result").get(1).asText())));
        }
        return out;
    }

    /** The single value of {@code promql} (e.g. a {@code sum(...)}), or empty when no series matches. */
    public OptionalDouble value(String promql) throws IOException {
        List<Sample> samples = query(promql);
        if (samples.size() > 1) {
            throw new IOException("'" + promql + "' returned " + samples.size() + " series; aggregate it");
        }
        return samples.isEmpty() ? OptionalDouble.empty() : OptionalDouble.of(samples.getFirst().value());
    }

    @Override
    public void close() {
        process.destroy();
        if (!process.onExit().completeOnTimeout(process, 10, TimeUnit.SECONDS).join().isAlive()) {
            log.debug("prometheus stopped; data in {}", dataDir);
        } else {
            process.destroyForcibly();
        }
    }
}
