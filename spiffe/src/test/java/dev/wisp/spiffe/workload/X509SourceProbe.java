package dev.wisp.spiffe.workload;

import io.spiffe.spiffeid.TrustDomain;
import io.spiffe.svid.x509svid.X509Svid;
import io.spiffe.workloadapi.DefaultX509Source;
import java.time.Duration;

/**
 * java-spiffe's {@link DefaultX509Source} as an application would use it, run in a pod by the e2e
 * tests ({@code WorkloadApiE2eTest}): {@code X509SourceProbe SOCKET_PATH TIMEOUT_SECONDS} prints
 * {@code svid <SPIFFE ID> <leaf serial, hex> <trust-domain authorities>} when the source gets an
 * SVID over the socket, or {@code failed <exception>} when it does not within the timeout.
 */
public final class X509SourceProbe {
    private X509SourceProbe() {}

    public static void main(String[] args) {
        try (DefaultX509Source source = DefaultX509Source.newSource(DefaultX509Source.X509SourceOptions.builder()
                .spiffeSocketPath("unix:" + args[0]).initTimeout(Duration.ofSeconds(Long.parseLong(args[1])))
                .build())) {
            X509Svid svid = source.getX509Svid();
            int authorities = source.getBundleForTrustDomain(TrustDomain.parse(svid.getSpiffeId().getTrustDomain()
                    .getName())).getX509Authorities().size();
            System.out.println("svid " + svid.getSpiffeId() + " " + svid.getLeaf().getSerialNumber().toString(16)
                    + " " + authorities);
        } catch (Exception e) {
            System.out.println("failed " + e);
        }
        System.out.flush();
        // java-spiffe's gRPC threads are not all daemons.
        System.exit(0);
    }
}
