import dev.wisp.spiffe.CertificateRequest;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.InMemoryNodeAuthorizer;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.security.KeyPair;
import java.security.Signature;
import java.util.Arrays;

/**
 * How long the CA takes to issue one workload certificate: CertificateAuthority.sign on a fresh
 * P-256 CSR (parse, key check, proof-of-possession verify, node authorization, build, ECDSA sign),
 * 1,000 times after warm-up, one thread. The peer in the same run is the irreducible crypto floor of
 * that work: one ECDSA P-256 verify plus one sign with the JDK over a certificate-sized message.
 */
public final class CaIssueBench {
    public static void main(String[] args) throws Exception {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 1000;
        InMemoryNodeAuthorizer pods = new InMemoryNodeAuthorizer().addPod("node-1", "shop", "cart");
        CertificateAuthority ca = CertificateAuthority.inMemory(CaSettings.of("cluster.local", pods));
        SpiffeId id = SpiffeId.forServiceAccount("cluster.local", "shop", "cart");
        byte[][] csrs = new byte[n][];
        for (int i = 0; i < n; i++) {
            csrs[i] = CertificateRequest.generate(id).der();
        }
        for (int i = 0; i < 2000; i++) { // warm-up: JIT the whole path
            ca.sign(csrs[i % n], null, "node-1");
        }
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        long[] caNanos = new long[n];
        long cpu0 = threads.getCurrentThreadCpuTime();
        for (int i = 0; i < n; i++) {
            long t0 = System.nanoTime();
            ca.sign(csrs[i], null, "node-1");
            caNanos[i] = System.nanoTime() - t0;
        }
        long caCpu = threads.getCurrentThreadCpuTime() - cpu0;

        KeyPair keys = CertificateRequest.newP256KeyPair();
        byte[] message = new byte[420];
        Signature signer = Signature.getInstance("SHA256withECDSA");
        signer.initSign(keys.getPrivate());
        signer.update(message);
        byte[] signature = signer.sign();
        Signature verifier = Signature.getInstance("SHA256withECDSA");
        for (int i = 0; i < 2000; i++) {
            floor(signer, verifier, keys, message, signature);
        }
        long[] floorNanos = new long[n];
        cpu0 = threads.getCurrentThreadCpuTime();
        for (int i = 0; i < n; i++) {
            long t0 = System.nanoTime();
            floor(signer, verifier, keys, message, signature);
            floorNanos[i] = System.nanoTime() - t0;
        }
        long floorCpu = threads.getCurrentThreadCpuTime() - cpu0;

        long caMedian = median(caNanos);
        long floorMedian = median(floorNanos);
        System.out.printf("CA issue (CertificateAuthority.sign), n=%d: median %.3f ms, p90 %.3f ms, p99 %.3f ms, "
                + "CPU %.3f ms/cert%n", n, ms(caMedian), ms(pct(caNanos, 90)), ms(pct(caNanos, 99)), ms(caCpu / n));
        System.out.printf("Peer: JDK ECDSA P-256 verify + sign (crypto floor), n=%d: median %.3f ms, p90 %.3f ms, "
                + "CPU %.3f ms/op%n", n, ms(floorMedian), ms(pct(floorNanos, 90)), ms(floorCpu / n));
        System.out.printf("Ratio CA issue / crypto floor: median wall %.2f, CPU %.2f%n", (double) caMedian / floorMedian,
                (double) caCpu / floorCpu);
    }

    private static void floor(Signature signer, Signature verifier, KeyPair keys, byte[] message, byte[] signature)
            throws Exception {
        verifier.initVerify(keys.getPublic());
        verifier.update(message);
        if (!verifier.verify(signature)) {
            throw new IllegalStateException("verify failed");
        }
        signer.update(message);
        signer.sign();
    }

    private static long median(long[] v) {
        return pct(v, 50);
    }

    private static long pct(long[] v, int p) {
        long[] s = v.clone();
        Arrays.sort(s);
        return s[Math.min(s.length - 1, (int) Math.ceil(p / 100.0 * s.length) - 1)];
    }

    private static double ms(long nanos) {
        return nanos / 1e6;
    }
}
