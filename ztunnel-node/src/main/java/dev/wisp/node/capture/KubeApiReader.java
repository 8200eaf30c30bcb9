package dev.wisp.node.capture;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * GETs of single objects from the Kubernetes API server, as the node's CNI pieces make them: a
 * bearer token read from a file, HTTPS trusting only the certificates of a CA file, no redirects,
 * 5 s timeouts, answers of at most 4 MiB. Used by {@link MeshMembership} (a pod's and its
 * namespace's labels) and {@link InstallerDaemonSet} (whether the installer's DaemonSet still
 * stands).
 */
final class KubeApiReader implements AutoCloseable {
    static final int MAX_BODY = 4 << 20;
    private static final Duration TIMEOUT = Duration.ofSeconds(5);

    /** A 200 whose body is not a JSON object of at most {@link #MAX_BODY} bytes. */
    static final class BadAnswer extends IOException {
        private static final long serialVersionUID = 1L;

        BadAnswer(String message) {
            super(message);
        }
    }

    /** An answer: its status, and for a 200 its body, a JSON object. */
    record Answer(int status, JsonNode body) {}

    private final URI server;
    private final String token;
    private final HttpClient client;

    /** Reads the token and the CA; an {@link IOException} names what could not be read. */
    KubeApiReader(URI server, Path tokenFile, Path caFile) throws IOException {
        this.server = server;
        try {
            this.token = Files.readString(tokenFile, StandardCharsets.UTF_8).strip();
            this.client = HttpClient.newBuilder().sslContext(trusting(caFile)).connectTimeout(TIMEOUT).followRedirects(
                    HttpClient.Redirect.NEVER).build();
        } catch (GeneralSecurityException e) {
            throw new IOException(e.getMessage(), e);
        }
    }

    /** Where {@code path} is on the server (for messages). */
    URI resolve(String path) {
        return server.resolve(path);
    }

    /**
     * GETs {@code path}. A 200 whose body is not a JSON object of at most {@link #MAX_BODY} bytes is
     * a {@link BadAnswer} saying so; any other status is answered with no body.
     */
    Answer get(String path) throws IOException, InterruptedException {
        HttpRequest request = HttpRequest.newBuilder(server.resolve(path)).timeout(TIMEOUT).header("Authorization",
                "Bearer " + token).header("Accept", "application/json").GET().build();
        HttpResponse<InputStream> response = client.send(request, HttpResponse.BodyHandlers.ofInputStream());
        try (InputStream body = response.body()) {
            byte[] bytes = body.readNBytes(MAX_BODY + 1);
            if (response.statusCode() != 200) {
                return new Answer(response.statusCode(), null);
            }
            return new Answer(200, BoundedJson.object(bytes, MAX_BODY, "the answer to GET " + path,
                    (message, cause) -> new BadAnswer(message)));
        }
    }

    /** {@code s} as one path segment. */
    static String segment(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }

    @Override
    public void close() {
        client.close();
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
