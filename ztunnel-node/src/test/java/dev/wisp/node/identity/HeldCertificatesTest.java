package dev.wisp.node.identity;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class HeldCertificatesTest {
    static final SpiffeId A = SpiffeId.parse("spiffe://cluster.local/ns/default/sa/a");
    static final SpiffeId B = SpiffeId.parse("spiffe://cluster.local/ns/default/sa/b");

    @Test
    void eachHeldCertificateNamesTheTrustedRootItsChainEndsAtAndNoneWhenThatRootIsGone() throws Exception {
        CertificateAuthority ca = CertificateAuthority.inMemory(CaSettings.of("cluster.local",
                NodeAuthorizer.unrestricted()));
        X509Certificate oldRoot = ca.signingRoot();
        X509Svid ofOld = ca.issue(A, null, "n1");
        X509Certificate newRoot = ca.addRoot();
        ca.switchSigning(newRoot);
        X509Svid ofNew = ca.issue(B, null, "n1");
        TrustBundle both = ca.bundle();
        Map<SpiffeId, X509Svid> held = Map.of(A, ofOld, B, ofNew);

        List<Map<String, Object>> rows = HeldCertificates.certificates(List.of(B, A), id -> Optional.ofNullable(held
                .get(id)), both);
        assertThat(rows).extracting(r -> r.get("identity")).containsExactly(A.toString(), B.toString());
        assertThat(rows.get(0)).containsEntry("root_serial", oldRoot.getSerialNumber().toString(16))
                .containsEntry("root_sha256", HeldCertificates.sha256(oldRoot))
                .containsEntry("serial", ofOld.leaf().getSerialNumber().toString(16))
                .containsEntry("not_after", ofOld.notAfter().toString());
        assertThat(rows.get(1)).containsEntry("root_serial", newRoot.getSerialNumber().toString(16));
        assertThat(HeldCertificates.roots(both)).extracting(r -> r.get("serial")).containsExactlyInAnyOrder(oldRoot
                .getSerialNumber().toString(16), newRoot.getSerialNumber().toString(16));

        assertThat(rows).allSatisfy(r -> assertThat(r).containsEntry("peers_accept", "yes"));

        ca.retireRoot(oldRoot);
        assertThat(HeldCertificates.certificates(List.of(A), id -> Optional.of(ofOld), ca.bundle()).getFirst())
                .containsEntry("root_serial", "").containsEntry("root_sha256", "").hasEntrySatisfying(
                        "peers_accept", v -> assertThat(v).asString().startsWith("no: ").contains(
                                "does not chain to the trust bundle of cluster.local"));
        assertThat(HeldCertificates.certificates(List.of(A), id -> Optional.empty(), ca.bundle())).isEmpty();
    }
}
