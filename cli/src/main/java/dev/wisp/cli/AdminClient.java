package dev.wisp.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;

/**
 * The control plane's admin API as {@code wisp apply/get/delete} use it: JSON over HTTP on
 * localhost. Transport failures become one operator-readable line.
 */
final class AdminClient {
    static final String DEFAULT = "http://127.0.0.1:15014";
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    /** Group of each kind, for kubectl-style names ({@code authorizationpolicy.security.istio.io/x}). */
    private static final Map<String, String> GROUPS = Map.of("AuthorizationPolicy", ".security.istio.io",
            "PeerAuthentication", ".security.istio.io", "MeshConfig", ".wisp.dev");

    record Reply(int status, JsonNode body) {}

    private final String base;

    AdminClient(String base) {
        this.base = base.endsWith("/") ? base.substring(0, base.length() - 1) : base;
    }

    Reply get(String path, Map<String, String> query) {
        return send(HttpRequest.newBuilder(uri(path, query)).GET());
    }

    Reply post(String path, Map<String, String> query, String body) {
        return send(HttpRequest.newBuilder(uri(path, query))
                .header("Content-Type", "application/yaml")
                .POST(HttpRequest.BodyPublishers.ofString(body)));
    }

    private URI uri(String path, Map<String, String> query) {
        StringBuilder sb = new StringBuilder(base).append(path);
        char sep = '?';
        for (var e : query.entrySet()) {
            sb.append(sep).append(e.getKey()).append('=')
                    .append(URLEncoder.encode(e.getValue(), StandardCharsets.UTF_8));
            sep = '&';
        }
        try {
            return URI.create(sb.toString());
        } catch (IllegalArgumentException e) {
            throw new UserException("--server: '" + base + "' is not a URL like " + DEFAULT);
        }
    }

    private Reply send(HttpRequest.Builder req) {
        try {
            HttpResponse<String> r = HTTP.send(req.timeout(Duration.ofSeconds(30)).build(),
                    HttpResponse.BodyHandlers.ofString());
            JsonNode body = r.body().isEmpty() ? JSON.createObjectNode() : JSON.readTree(r.body());
            return new Reply(r.statusCode(), body);
        } catch (IOException e) {
            throw new UserException("cannot reach the control plane at " + base + " (" + e.getClass().getSimpleName()
                    + (e.getMessage() == null ? "" : ": " + e.getMessage()) + "); is 'wisp control-plane' running?");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UserException("interrupted");
        }
    }

    /** kubectl's {@code kind.group/name}. */
    static String resourceName(JsonNode item) {
        String kind = item.path("kind").asText();
        return kind.toLowerCase(Locale.ROOT) + GROUPS.getOrDefault(kind, "") + "/" + item.path("name").asText();
    }
}
