package dev.wisp.node.controlplane;

import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import java.security.cert.CertificateException;
import org.junit.jupiter.api.Test;

/** A signed chain is used only if it verifies against the roots the control plane sent with it. */
class GrpcCertificateSignerTest {
    static final SpiffeId CLIENT = SpiffeId.forServiceAccount("cluster.local", "default", "client");

    static CertificateAuthority ca() {
        return CertificateAuthority.inMemory(CaSettings.of("cluster.local", NodeAuthorizer.unrestricted()));
    }

    @Test
    void aChainOfTheSendersRootIsTaken() {
        CertificateAuthority ca = ca();
        X509Svid svid = ca.issue(CLIENT, null, "node1");
        assertThatCode(() -> GrpcCertificateSigner.verifiable(svid.chain(), ca.bundle())).doesNotThrowAnyException();
    }

    @Test
    void aChainThatNoSentRootVerifiesIsRefusedSoThatTheManagerAsksAgain() {
        CertificateAuthority ca = ca();
        X509Svid stray = ca().issue(CLIENT, null, "node1");
        assertThatThrownBy(() -> GrpcCertificateSigner.verifiable(stray.chain(), ca.bundle()))
                .isInstanceOf(CertificateException.class)
                .hasMessageStartingWith(
                        "the signed certificate does not verify against the trust bundle sent with it: ")
                .hasMessageContaining("does not chain to the trust bundle of cluster.local");
    }
}
