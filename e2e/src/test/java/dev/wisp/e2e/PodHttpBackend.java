package dev.wisp.e2e;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;

/**
 * An HTTP/1.1 backend for the waypoint tests, run in a pod: {@code PodHttpBackend NAME PORT}. It
 * prints {@code listening}, then one line per request ({@code request NAME METHOD URI}); every answer
 * is {@code NAME METHOD URI} followed by the request's {@code x-*} headers, one {@code name: value}
 * line each (sorted). Paths under {@code /slow} answer after one second; under {@code /flaky} every
 * odd-numbered one (counted over the process) answers 503.
 */
public final class PodHttpBackend {
    private PodHttpBackend() {}

    public static void main(String[] args) throws IOException {
        String name = args[0];
        HttpServer server = HttpServer.create(new InetSocketAddress(Integer.parseInt(args[1])), 64);
        AtomicLong flaky = new AtomicLong();
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server.createContext("/", ex -> {
            String uri = ex.getRequestURI().toString();
            String path = ex.getRequestURI().getPath();
            synchronized (System.out) {
                System.out.println("request " + name + " " + ex.getRequestMethod() + " " + uri);
                System.out.flush();
            }
            int status = 200;
            if (path.startsWith("/slow")) {
                try {
                    Thread.sleep(1000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            } else if (path.startsWith("/flaky") && flaky.incrementAndGet() % 2 == 1) {
                status = 503;
            }
            answer(ex, status, name + " " + ex.getRequestMethod() + " " + uri + "\n" + headers(ex));
        });
        server.start();
        System.out.println("listening");
        System.out.flush();
    }

    private static String headers(HttpExchange ex) {
        Map<String, List<String>> sorted = new TreeMap<>();
        ex.getRequestHeaders().forEach((k, v) -> {
            String n = k.toLowerCase(java.util.Locale.ROOT);
            if (n.startsWith("x-")) {
                sorted.put(n, v);
            }
        });
        StringBuilder b = new StringBuilder();
        sorted.forEach((k, v) -> b.append(k).append(": ").append(String.join(",", v)).append('\n'));
        return b.toString();
    }

    private static void answer(HttpExchange ex, int status, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().add("Content-Type", "text/plain");
        ex.getResponseHeaders().add("X-Backend-Only", "secret");
        ex.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(bytes);
        }
    }
}
