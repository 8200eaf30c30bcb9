package dev.wisp.node.capture;

import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import java.io.IOException;
import java.io.OutputStream;
import java.math.BigInteger;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A stand-in for the Kubernetes API server as the node's CNI pieces read it: a JDK
 * {@code HttpsServer} on 127.0.0.1 with a self-signed certificate for that address (its PEM written
 * as {@link #caFile}), answering each GET with the object put under its path (200), the status put
 * under it ({@link #status}), or 404; it records every request with its Authorization header.
 */
final class KubeApiStandIn implements AutoCloseable {
    static final String TOKEN = "eyJhbGciOiJSUzI1NiJ9.plugin-token";

    /** Path → JSON body answered with 200. */
    final Map<String, String> objects = new ConcurrentHashMap<>();
    /** Path → a status answered with a Status body (takes precedence over {@link #objects}). */
    final Map<String, Integer> status = new ConcurrentHashMap<>();
    /** "METHOD path Authorization" of every request. */
    final List<String> requests = new CopyOnWriteArrayList<>();
    final Path caFile;
    final Path tokenFile;
    private final HttpsServer server;

    /** Starts it, writing {@code ca.crt} and {@code token} into {@code dir}. */
    KubeApiStandIn(Path dir) throws Exception {
        KeyPair keys = KeyPairGenerator.getInstance("EC").generateKeyPair();
        X509Certificate cert = selfSigned(keys);
        KeyStore ks = KeyStore.getInstance("PKCS12");
        ks.load(null, null);
        ks.setKeyEntry("api", keys.getPrivate(), new char[0], new X509Certificate[]{cert});
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, new char[0]);
        SSLContext tls = SSLContext.getInstance("TLS");
        tls.init(kmf.getKeyManagers(), null, null);
        server = HttpsServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.setHttpsConfigurator(new HttpsConfigurator(tls));
        server.createContext("/", exchange -> {
            String path = exchange.getRequestURI().getRawPath();
            requests.add(exchange.getRequestMethod() + " " + path + " " + exchange.getRequestHeaders().getFirst(
                    "Authorization"));
            Integer code = status.get(path);
            String body = code == null ? objects.get(path) : null;
            int answer = code != null ? code : body == null ? 404 : 200;
            byte[] bytes = (body == null ? "{\"kind\": \"Status\", \"code\": " + answer + "}" : body).getBytes(
                    StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(answer, bytes.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(bytes);
            }
        });
        server.start();
        caFile = Files.writeString(dir.resolve("ca.crt"), pem(cert));
        tokenFile = Files.writeString(dir.resolve("token"), TOKEN + "\n");
    }

    /** {@code https://127.0.0.1:PORT}. */
    String url() {
        return "https://127.0.0.1:" + server.getAddress().getPort();
    }

    /** A certificate for 127.0.0.1, self-signed with {@code keys}. */
    static X509Certificate selfSigned(KeyPair keys) throws Exception {
        X500Name name = new X500Name("CN=kube-apiserver");
        Instant now = Instant.now();
        return new JcaX509CertificateConverter().getCertificate(new JcaX509v3CertificateBuilder(name, BigInteger.TWO,
                java.util.Date.from(now.minus(1, ChronoUnit.HOURS)), java.util.Date.from(now.plus(1,
                        ChronoUnit.HOURS)),
                name, keys.getPublic()).addExtension(Extension.subjectAlternativeName,
                        false, new GeneralNames(new GeneralName(GeneralName.iPAddress, "127.0.0.1")))
                .build(new JcaContentSignerBuilder("SHA256withECDSA").build(keys.getPrivate())));
    }

    static String pem(X509Certificate cert) throws IOException {
        try {
            return "-----BEGIN CERTIFICATE-----\n" + Base64.getMimeEncoder().encodeToString(cert.getEncoded())
                    + "\n-----END CERTIFICATE-----\n";
        } catch (java.security.cert.CertificateEncodingException e) {
            throw new IOException(e);
        }
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
