package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.wisp.testing.LogCapture;
import dev.wisp.node.TwoAgents;
import dev.wisp.node.identity.Identities;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.telemetry.FlowLog;
import dev.wisp.node.telemetry.FlowRecord;
import dev.wisp.node.tls.ClientHellos;
import dev.wisp.node.tls.HboneTls;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import dev.wisp.testing.RawHboneClient;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every refusal on the HBONE port leaves one access-log line and one flow record that name the
 * peer's address and the outcome, on two real agents (n2's HBONE server): the 400s and the 503 of a
 * CONNECT, and the TLS refusals (ALPN without h2, TLS 1.2, no certificate, a certificate of another
 * CA). ALPN without h2 gets RFC 7301's fatal {@code no_application_protocol} alert before anything
 * else. A flood of refusals writes a bounded number of lines and accounts for the rest.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class RefusalTraceTest {
    static final byte[] NO_APPLICATION_PROTOCOL_ALERT = {21, 3, 3, 0, 2, 2, 120};
    static final LogCapture access = new LogCapture("wisp.access");
    static final RawHboneClient raw = new RawHboneClient();
    static TwoAgents mesh;
    static Identities clientIds;
    /** n2's HBONE server, which every test talks to. */
    static InetSocketAddress hbone;

    @BeforeAll
    static void start() throws Exception {
        mesh = new TwoAgents(Duration.ofSeconds(5));
        clientIds = Identities.local(mesh.ca, "n1");
        hbone = mesh.n2.addresses().get("hbone");
    }

    @AfterAll
    static void stop() throws Exception {
        raw.close();
        clientIds.close();
        mesh.close();
        access.close();
    }

    @BeforeEach
    void quiet() {
        access.clear();
    }

    static FlowLog flows() {
        return mesh.n2.telemetry().flows();
    }

    /** The one flow record n2 writes after {@code mark}. */
    static FlowRecord onlyRecordAfter(long mark) {
        await().atMost(Duration.ofSeconds(10)).until(() -> !flows().since(mark).isEmpty());
        List<FlowRecord> records = flows().since(mark);
        assertThat(records).hasSize(1);
        return records.getFirst();
    }

    /** The one refusal line written since the test began. */
    static String onlyRefusalLine() {
        await().atMost(Duration.ofSeconds(10)).until(() -> access.lines().stream().anyMatch(l -> l.contains("error=")));
        return assertThat(access.lines().stream().filter(l -> l.contains("error=")).toList()).singleElement()
                .actual();
    }

    static Stream<Arguments> refusedRequests() {
        return Stream.of(
                Arguments.of("a workload of another node", "127.0.0.4:9000", "400", FlowRecord.FAILED,
                        "workload pod-a runs on node n1, not n2"),
                Arguments.of("a host name", "echo.default:9000", "400", FlowRecord.FAILED,
                        "authority 'echo.default:9000' is not ip:port"),
                Arguments.of("no port", "127.0.0.3", "400", FlowRecord.FAILED, "authority '127.0.0.3' is not ip:port"),
                Arguments.of("an unknown address", "127.0.0.99:80", "503", FlowRecord.FAILED,
                        "no workload has address 127.0.0.99"));
    }

    @ParameterizedTest(name = "CONNECT to {0} → {2}")
    @MethodSource("refusedRequests")
    @Order(1)
    void aRefusedConnectIsAnsweredLoggedOnceAndRecorded(String name, String authority, String status, String verdict,
            String reason) throws Exception {
        SslContext tls = new HboneTls(clientIds).client(SpiffeId.parse(TwoAgents.CLIENT_ID),
                List.of(IdentityProvider.nodeId("cluster.local", "n2")));
        long mark = flows().last();
        assertThat(raw.request(tls, hbone, new DefaultHttp2Headers().method("CONNECT").authority(authority)))
                .isEqualTo(status);
        FlowRecord r = onlyRecordAfter(mark);
        assertThat(r.verdict()).isEqualTo(verdict);
        assertThat(r.reason()).isEqualTo(reason);
        assertThat(r.sourceAddress()).startsWith("127.0.0.1:");
        assertThat(r.sourceIdentity()).isEqualTo(TwoAgents.CLIENT_ID);
        assertThat(onlyRefusalLine()).startsWith("connection complete direction=inbound src.addr=" + r.sourceAddress())
                .contains("src.identity=\"" + TwoAgents.CLIENT_ID + "\"")
                .endsWith("error=\"HBONE " + status + ": " + reason + "\"");
    }

    static SslContextBuilder jdkClient(X509Svid svid, String protocol) {
        SslContextBuilder b = SslContextBuilder.forClient().sslProvider(SslProvider.JDK).protocols(protocol)
                .trustManager(InsecureTrustManagerFactory.INSTANCE).endpointIdentificationAlgorithm(null);
        return svid == null ? b : b.keyManager(svid.privateKey(), svid.chain());
    }

    static X509Svid clientSvid() throws Exception {
        return clientIds.svid(SpiffeId.parse(TwoAgents.CLIENT_ID));
    }

    @Test
    @Order(1)
    void alpnWithoutH2GetsTheNoApplicationProtocolAlertAndNothingElse() throws Exception {
        long mark = flows().last();
        String local;
        try (Socket s = new Socket()) {
            s.connect(hbone, 5000);
            s.setSoTimeout(10_000);
            local = "127.0.0.1:" + s.getLocalPort();
            s.getOutputStream().write(ClientHellos.record(new String[]{"TLSv1.3"}, "http/1.1"));
            InputStream in = s.getInputStream();
            // The whole answer, to EOF: one plaintext alert record (fatal, no_application_protocol).
            assertThat(in.readAllBytes()).isEqualTo(NO_APPLICATION_PROTOCOL_ALERT);
        }
        FlowRecord r = onlyRecordAfter(mark);
        assertThat(r.sourceAddress()).isEqualTo(local);
        assertThat(r.verdict()).isEqualTo(FlowRecord.FAILED);
        assertThat(r.reason()).isEqualTo("ALPN without h2: the client offered [http/1.1]");
        assertThat(r.destinationIdentity()).isEqualTo("spiffe://cluster.local/ns/wisp-system/sa/wisp-node.n2");
        assertThat(onlyRefusalLine()).contains("src.addr=" + local)
                .endsWith("error=\"TLS ALPN without h2: the client offered [http/1.1]\"");
    }

    @Test
    @Order(1)
    void aTlsClientOfferingHttp11SeesTheAlertAsItsHandshakeFailure() throws Exception {
        SslContext http11 = jdkClient(clientSvid(), "TLSv1.3").applicationProtocolConfig(new ApplicationProtocolConfig(
                ApplicationProtocolConfig.Protocol.ALPN, ApplicationProtocolConfig.SelectorFailureBehavior.NO_ADVERTISE,
                ApplicationProtocolConfig.SelectedListenerFailureBehavior.ACCEPT, "http/1.1")).build();
        long mark = flows().last();
        assertThatThrownBy(() -> raw.tls(http11, hbone)).rootCause().hasMessageContaining("no_application_protocol");
        assertThat(onlyRecordAfter(mark).reason()).startsWith("ALPN without h2");
    }

    @Test
    @Order(1)
    void aTlsClientOfferingNoAlpnIsRefusedTheSameWay() throws Exception {
        long mark = flows().last();
        assertThatThrownBy(() -> raw.tls(jdkClient(clientSvid(), "TLSv1.3").build(), hbone)).rootCause()
                .hasMessageContaining("no_application_protocol");
        assertThat(onlyRecordAfter(mark).reason()).isEqualTo("ALPN without h2: the client offered no ALPN");
    }

    static SslContextBuilder h2(SslContextBuilder b) {
        return b.applicationProtocolConfig(new ApplicationProtocolConfig(ApplicationProtocolConfig.Protocol.ALPN,
                ApplicationProtocolConfig.SelectorFailureBehavior.NO_ADVERTISE,
                ApplicationProtocolConfig.SelectedListenerFailureBehavior.ACCEPT, "h2"));
    }

    @Test
    @Order(1)
    void tls12IsRefusedWithProtocolVersion() throws Exception {
        long mark = flows().last();
        assertThatThrownBy(() -> raw.tls(h2(jdkClient(clientSvid(), "TLSv1.2")).build(), hbone)).rootCause()
                .hasMessageContaining("protocol_version");
        FlowRecord r = onlyRecordAfter(mark);
        assertThat(r.reason()).isEqualTo("not TLS 1.3: the client offered TLS 1.2 or older only");
        assertThat(onlyRefusalLine()).contains("src.addr=" + r.sourceAddress()).contains("error=\"TLS not TLS 1.3");
    }

    @Test
    @Order(1)
    void aClientWithoutCertificateIsRefused() throws Exception {
        long mark = flows().last();
        try {
            // TLS 1.3: the client's side of the handshake completes before the server judges it.
            raw.closedAfter(raw.tls(h2(jdkClient(null, "TLSv1.3")).build(), hbone),
                    io.netty.buffer.Unpooled.EMPTY_BUFFER);
        } catch (Exception refusedDuringTheHandshake) {
            // as good: the refusal is what the server records
        }
        FlowRecord r = onlyRecordAfter(mark);
        assertThat(r.reason()).isEqualTo("no client certificate: the client sent no certificate");
        assertThat(onlyRefusalLine()).contains("src.addr=" + r.sourceAddress());
    }

    @Test
    @Order(1)
    void aCertificateOfAnotherCaIsRefusedNamingThePeerAndWhomItClaims() throws Exception {
        CertificateAuthority foreign = CertificateAuthority
                .inMemory(CaSettings.of("cluster.local", NodeAuthorizer.unrestricted()));
        SpiffeId claimed = SpiffeId.parse(TwoAgents.CLIENT_ID);
        X509Svid svid = foreign.issue(claimed, null, "n1");
        // Presented whatever issuers the server lists, as an attacker would.
        SslContext presenting = RawHboneClient.presenting(svid.leaf(), svid.privateKey());
        long mark = flows().last();
        try {
            raw.closedAfter(raw.tls(presenting, hbone),
                    io.netty.buffer.Unpooled.EMPTY_BUFFER);
        } catch (Exception refusedDuringTheHandshake) {
            // as good
        }
        FlowRecord r = onlyRecordAfter(mark);
        assertThat(r.reason())
                .startsWith("certificate not signed by the mesh CA: certificate rejected: the certificate of "
                        + claimed + " does not chain to the trust bundle of cluster.local");
        assertThat(r.sourceIdentity()).as("a refused certificate proves nothing").isEmpty();
        assertThat(onlyRefusalLine()).contains("src.addr=" + r.sourceAddress()).contains(claimed.toString());
    }

    @Test
    @Order(2)
    void aFloodOfRefusalsWritesBoundedLinesAndAccountsForEveryOne() throws Exception {
        int flood = 60;
        long mark = flows().last();
        long started = System.nanoTime();
        byte[] hello = ClientHellos.record(new String[]{"TLSv1.3"}, "http/1.1");
        for (int i = 0; i < flood; i++) {
            try (Socket s = new Socket()) {
                s.connect(hbone, 5000);
                s.setSoTimeout(10_000);
                s.getOutputStream().write(hello);
                assertThat(s.getInputStream().readAllBytes()).isEqualTo(NO_APPLICATION_PROTOCOL_ALERT);
            }
        }
        double seconds = (System.nanoTime() - started) / 1e9;
        await().atMost(Duration.ofSeconds(10)).until(() -> flows().since(mark).size() == flood);
        long refusalLines = access.lines().stream().filter(l -> l.startsWith("connection complete")).count();
        // The bucket holds at most the burst and refills at the rate: no more lines than that.
        assertThat(refusalLines).isLessThanOrEqualTo(20 + (long) Math.ceil(10 * seconds));

        // One more refusal at a time until one is let through: it brings the count of those left out.
        int[] extra = {0};
        await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(50)).until(() -> {
            try (Socket s = new Socket()) {
                s.connect(hbone, 5000);
                s.getOutputStream().write(hello);
                s.getInputStream().readAllBytes();
            }
            extra[0]++;
            await().atMost(Duration.ofSeconds(10)).until(() -> flows().since(mark).size() == flood + extra[0]);
            List<String> lines = access.lines();
            return lines.getLast().startsWith("connection complete") && lines.size() > 1
                    && lines.get(lines.size() - 2).contains("more refused connections not logged")
                    || refusalLines == flood && lines.size() == flood + extra[0];
        });
        Pattern summary = Pattern.compile("(\\d+) more refused connections not logged .*");
        long logged = 0;
        long summarised = 0;
        for (String l : access.lines()) {
            Matcher m = summary.matcher(l);
            if (m.matches()) {
                summarised += Long.parseLong(m.group(1));
            } else if (l.startsWith("connection complete")) {
                logged++;
            }
        }
        assertThat(logged + summarised).as("every refusal is a line or counted in a summary")
                .isEqualTo(flood + extra[0]);
    }
}
