package dev.wisp.node.capture;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.base.Enrollment;
import dev.wisp.node.capture.CniPlugin.CniException;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * Whether the pod a CNI call is about is in the mesh, asked of the API server as the control plane
 * decides it ({@link Enrollment} over the pod's and its namespace's labels), so that the plugin lets
 * a pod the mesh does not enroll start without waiting for the agent. The pod's labels are not in
 * the CNI arguments, so the plugin reads the Pod and its Namespace with the token the chart's
 * install container copied beside the configuration (the {@code wisp-node} service account, which
 * may only get pods and namespaces), trusting only the cluster's CA file.
 *
 * <p>Fail closed: any answer that is not a clear "not enrolled" (the API unreachable, refused, the
 * pod missing or of another UID, a token that cannot be read) is CNI error 11, so the runtime retries
 * the sandbox later; it never lets a pod start unenrolled on a guess.
 */
final class MeshMembership {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MAX_BODY = 4 << 20;
    private static final Duration TIMEOUT = Duration.ofSeconds(5);

    /** The plugin configuration's {@code kubernetes} object. */
    record Api(URI server, Path tokenFile, Path caFile, Enrollment enrollment) {
        static Api of(JsonNode k) throws CniException {
            URI server;
            try {
                server = URI.create(k.path("server").asText());
            } catch (IllegalArgumentException e) {
                throw invalid("kubernetes.server is not a URL");
            }
            if (!"https".equals(server.getScheme()) || server.getHost() == null) {
                throw invalid("kubernetes.server must be an https:// URL (the token is sent to it)");
            }
            String label = k.path("enrollLabel").asText(Enrollment.DEFAULT_LABEL);
            if (label.isBlank()) {
                throw invalid("kubernetes.enrollLabel must not be empty");
            }
            return new Api(server, path(k, "tokenFile"), path(k, "caFile"), new Enrollment(label, k.path(
                    "honorIstioLabels").asBoolean(false)));
        }

        private static Path path(JsonNode k, String field) throws CniException {
            try {
                Path p = Path.of(k.path(field).asText());
                if (p.isAbsolute()) {
                    return p;
                }
            } catch (InvalidPathException e) {
                // refused below
            }
            throw invalid("kubernetes." + field + " must be an absolute path");
        }

        private static CniException invalid(String msg) {
            return new CniException(CniPlugin.INVALID_CONFIG, msg);
        }
    }

    private MeshMembership() {}

    /** Whether pod {@code namespace/name} with {@code uid} is enrolled; error 11 when that cannot be told. */
    static boolean enrolled(Api api, String namespace, String name, String uid) throws CniException {
        HttpClient client;
        String token;
        try {
            token = Files.readString(api.tokenFile(), StandardCharsets.UTF_8).strip();
            client = HttpClient.newBuilder().sslContext(trusting(api.caFile())).connectTimeout(TIMEOUT).followRedirects(
                    HttpClient.Redirect.NEVER).build();
        } catch (IOException | GeneralSecurityException e) {
            throw unknown(namespace, name, "cannot read the plugin's API credentials (" + e.getMessage() + ")");
        }
        try (client) {
            JsonNode pod = get(client, api, token, "/api/v1/namespaces/" + segment(namespace) + "/pods/" + segment(
                    name), namespace, name);
            String actual = pod.at("/metadata/uid").asText();
            if (!uid.equals(actual)) {
                throw unknown(namespace, name, "the API's pod of that name has uid '" + actual + "', not " + uid);
            }
            JsonNode ns = get(client, api, token, "/api/v1/namespaces/" + segment(namespace), namespace, name);
            return api.enrollment().enrolled(labels(pod), labels(ns));
        }
    }

    private static JsonNode get(HttpClient client, Api api, String token, String path, String namespace, String name)
            throws CniException {
        HttpRequest request = HttpRequest.newBuilder(api.server().resolve(path)).timeout(TIMEOUT).header(
                "Authorization", "Bearer " + token).header("Accept", "application/json").GET().build();
        try {
            HttpResponse<InputStream> response = client.send(request, HttpResponse.BodyHandlers.ofInputStream());
            try (InputStream body = response.body()) {
                byte[] bytes = body.readNBytes(MAX_BODY + 1);
                if (response.statusCode() != 200) {
                    throw unknown(namespace, name, "GET " + path + " answered " + response.statusCode() + (response
                            .statusCode() == 403
                                    ? " (may the wisp-node service account get pods and namespaces?)"
                                    : ""));
                }
                if (bytes.length > MAX_BODY) {
                    throw unknown(namespace, name, "GET " + path + " answered more than " + MAX_BODY + " bytes");
                }
                JsonNode node = JSON.readTree(bytes);
                if (node == null || !node.isObject()) {
                    throw unknown(namespace, name, "GET " + path + " did not answer a JSON object");
                }
                return node;
            }
        } catch (JsonProcessingException e) {
            throw unknown(namespace, name, "GET " + path + " did not answer JSON");
        } catch (IOException e) {
            throw unknown(namespace, name, "GET " + api.server().resolve(path) + " failed: " + e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw unknown(namespace, name, "interrupted");
        }
    }

    private static Map<String, String> labels(JsonNode object) {
        Map<String, String> out = new HashMap<>();
        object.at("/metadata/labels").properties().forEach(e -> out.put(e.getKey(), e.getValue().asText()));
        return out;
    }

    private static String segment(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }

    private static CniException unknown(String namespace, String name, String why) {
        return new CniException(CniPlugin.TRY_AGAIN_LATER, "cannot tell whether pod " + namespace + "/" + name
                + " is in the mesh: " + why + "; not starting it unenrolled");
    }

    /** An SSL context that trusts exactly the certificates of {@code caFile}. */
    private static SSLContext trusting(Path caFile) throws IOException, GeneralSecurityException {
        KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
        trust.load(null, null);
        try (InputStream in = Files.newInputStream(caFile)) {
            int i = 0;
            for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                trust.setCertificateEntry("ca-" + i++, c);
            }
            if (i == 0) {
                throw new GeneralSecurityException(caFile + " holds no certificate");
            }
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, tmf.getTrustManagers(), null);
        return ctx;
    }
}
