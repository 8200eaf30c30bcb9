package dev.wisp.controlplane.ca;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.wisp.controlplane.ControlPlane;
import dev.wisp.controlplane.TestMesh;
import dev.wisp.controlplane.ca.RootRotation.Phase;
import dev.wisp.controlplane.ca.RootRotation.Step;
import dev.wisp.node.NodeSettings;
import dev.wisp.node.controlplane.ControlPlaneClient;
import dev.wisp.spiffe.CertificateRequest;
import dev.wisp.spiffe.SpiffeId;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code wisp ca rotate} on a running control plane, with a real agent-side client
 * ({@link ControlPlaneClient}) watching the bundle: each step reaches the client without any
 * certificate request, the phase survives a restart, steps out of order are refused.
 */
class RootRotationTest {
    static final Duration WITHIN = Duration.ofSeconds(20);
    static final SpiffeId WEB = SpiffeId.parse("spiffe://cluster.local/ns/shop/sa/web");
    @TempDir
    Path config;
    @TempDir
    Path state;
    ControlPlane cp;
    ControlPlaneClient client;

    ControlPlane start() {
        return ControlPlane.start(new ControlPlane.Options(config, state, new InetSocketAddress("127.0.0.1", 0),
                new InetSocketAddress("127.0.0.1", 0)));
    }

    /** node-a's client, bootstrapped with the bundle file an operator copies from the state directory. */
    ControlPlaneClient client() throws Exception {
        return ControlPlaneClient.withoutDiscovery(new NodeSettings.Source.ControlPlane("127.0.0.1", cp.xdsPort(),
                cp.credentials().tokenFile("node-a"), cp.caDir().resolve("bundle.pem")), "cluster.local");
    }

    @AfterEach
    void stop() {
        if (client != null) {
            client.close();
        }
        if (cp != null) {
            cp.close();
        }
    }

    List<X509Certificate> clientRoots() {
        return client.bundle().get().roots();
    }

    X509Certificate signedForClient() throws Exception {
        CertificateRequest csr = CertificateRequest.generate(WEB);
        return client.signer().sign(WEB, csr.der(), Duration.ofHours(1)).get(10, TimeUnit.SECONDS).getFirst();
    }

    @Test
    void eachStepReachesAWatchingClientAtOnceAndThePhaseSurvivesARestart() throws Exception {
        Files.writeString(config.resolve("mesh.yaml"), TestMesh.YAML);
        cp = start();
        client = client();
        await().atMost(WITHIN).until(() -> cp.certificates().bundleWatchers() == 1);
        RootRotation.Status stable = cp.rotation().status().orElseThrow();
        assertThat(stable.phase()).isEqualTo(Phase.STABLE);
        X509Certificate oldRoot = stable.signingRoot();

        assertThatThrownBy(() -> cp.rotation().step(Step.SWITCH)).isInstanceOf(RootRotation.OutOfOrderException.class)
                .hasMessage("cannot switch: root " + RootRotation.serial(oldRoot)
                        + " signs and is the only trusted root; the next step is 'add'");
        assertThatThrownBy(() -> cp.rotation().step(Step.RETIRE)).hasMessageEndingWith("the next step is 'add'");

        RootRotation.Status added = cp.rotation().step(Step.ADD);
        X509Certificate newRoot = added.added().orElseThrow();
        assertThat(added.phase()).isEqualTo(Phase.ADDED);
        // Pushed on the watch: the client asked for no certificate since it connected.
        await().atMost(WITHIN).until(() -> clientRoots().size() == 2);
        assertThat(clientRoots()).containsExactlyInAnyOrder(oldRoot, newRoot);
        assertThat(cp.registry().scrape()).doesNotContain("wisp_ca_certificates_issued_total");
        assertThat(signedForClient().getIssuerX500Principal()).as("the old root still signs")
                .isEqualTo(oldRoot.getSubjectX500Principal());
        assertThatThrownBy(() -> cp.rotation().step(Step.ADD)).hasMessage("cannot add: root "
                + RootRotation.serial(newRoot) + " was added and is trusted but does not sign yet; root "
                + RootRotation.serial(oldRoot) + " signs; the next step is 'switch'");

        // A restart between two steps: the CA directory holds the phase.
        client.close();
        cp.close();
        cp = start();
        await().atMost(WITHIN).until(() -> cp.rotation().status().isPresent());
        assertThat(cp.rotation().status().orElseThrow().phase()).isEqualTo(Phase.ADDED);
        assertThat(cp.rotation().status().orElseThrow().added()).contains(newRoot);
        client = client();
        await().atMost(WITHIN).until(() -> cp.certificates().bundleWatchers() == 1);

        RootRotation.Status switched = cp.rotation().step(Step.SWITCH);
        assertThat(switched.phase()).isEqualTo(Phase.SWITCHED);
        assertThat(switched.signingRoot()).isEqualTo(newRoot);
        assertThat(switched.old()).containsExactly(oldRoot);
        X509Certificate leaf = signedForClient();
        leaf.verify(newRoot.getPublicKey());

        RootRotation.Status retired = cp.rotation().step(Step.RETIRE);
        assertThat(retired.phase()).isEqualTo(Phase.STABLE);
        assertThat(retired.trusted()).containsExactly(newRoot);
        await().atMost(WITHIN).until(() -> clientRoots().size() == 1);
        assertThat(clientRoots()).containsExactly(newRoot);
        // The control plane now presents a certificate of the new root: the client, which trusts only
        // that root, still gets certificates signed.
        signedForClient().verify(newRoot.getPublicKey());
    }

    @Test
    void theWorkloadCertificateLifetimeIsTheControlPlanesSetting() throws Exception {
        Files.writeString(config.resolve("mesh.yaml"), TestMesh.YAML);
        assertThatThrownBy(() -> new CaOptions(java.util.Optional.empty(), java.util.Optional.of(Duration.ofSeconds(
                10)))).hasMessage("--workload-cert-ttl: 10s is outside 30s to 24h");
        cp = ControlPlane.start(new ControlPlane.Options(config, state, new InetSocketAddress("127.0.0.1", 0),
                new InetSocketAddress("127.0.0.1", 0)).withCa(
                        new CaOptions(java.util.Optional.empty(),
                                java.util.Optional.of(Duration.ofSeconds(30)))));
        client = client();
        // Asked for an hour, as agents ask for a day: signed for 30 s (after the CA's one-minute backdating).
        X509Certificate leaf = signedForClient();
        Duration lifetime = Duration.between(leaf.getNotBefore().toInstant(), leaf.getNotAfter().toInstant());
        assertThat(lifetime).isBetween(Duration.ofSeconds(89), Duration.ofSeconds(91));
    }

    @Test
    void aPluggedInCaIsNotRotatedHere() throws Exception {
        Files.writeString(config.resolve("mesh.yaml"), TestMesh.YAML);
        AtomicInteger pushes = new AtomicInteger();
        cp = start();
        await().atMost(WITHIN).until(() -> cp.rotation().status().isPresent());
        RootRotation plugged = new RootRotation(() -> null, true, pushes::incrementAndGet);
        assertThatThrownBy(() -> plugged.step(Step.ADD)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("no CA yet");
        // The running CA's directory, seen as plugged in: refused before any change.
        dev.wisp.spiffe.ca.CertificateAuthority running = dev.wisp.spiffe.ca.CertificateAuthority.open(cp.caDir(),
                dev.wisp.spiffe.ca.NodeAuthorizer.unrestricted());
        RootRotation asPlugged = new RootRotation(() -> running, true, pushes::incrementAndGet);
        assertThatThrownBy(() -> asPlugged.step(Step.ADD)).isInstanceOf(RootRotation.OutOfOrderException.class)
                .hasMessageContaining("--cacerts");
        assertThat(pushes).hasValue(0);
        assertThat(cp.rotation().status().orElseThrow().phase()).isEqualTo(Phase.STABLE);
    }
}
