package dev.wisp.node.controlplane;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.TrustBundle;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The trust bundle a process got from the control plane: the bootstrap one, then the roots the CA
 * sends (with each certificate, and on the bundle watch at each rotation step). Listeners hear of
 * each change, after it is visible to {@link #get()} (TLS reads it at each handshake).
 *
 * <p>Threads: any; the bundle is one atomic reference, listeners run on the updating thread.
 */
final class TrustedRoots {
    private static final Logger log = LoggerFactory.getLogger(TrustedRoots.class);
    private final String trustDomain;
    private final AtomicReference<TrustBundle> bundle;
    private final List<Runnable> listeners = new CopyOnWriteArrayList<>();

    TrustedRoots(TrustBundle initial) {
        this.trustDomain = initial.trustDomain();
        this.bundle = new AtomicReference<>(initial);
    }

    TrustBundle get() {
        return bundle.get();
    }

    void onChange(Runnable listener) {
        listeners.add(requireNonNull(listener, "listener"));
    }

    /** Replaces the bundle with {@code pems} (PEM roots) when they differ from it. */
    void update(List<String> pems) throws CertificateException {
        List<X509Certificate> roots = parse(pems);
        if (roots.isEmpty()) {
            throw new CertificateException("the control plane sent an empty trust bundle");
        }
        TrustBundle next = TrustBundle.of(trustDomain, roots.toArray(X509Certificate[]::new));
        TrustBundle current;
        do {
            current = bundle.get();
            if (roots.size() == current.roots().size() && roots.stream().allMatch(current::contains)) {
                return;
            }
        } while (!bundle.compareAndSet(current, next));
        log.info("trust bundle of {} changed: {} root(s), serials {}", trustDomain, roots.size(),
                roots.stream().map(r -> r.getSerialNumber().toString(16)).toList());
        for (Runnable l : listeners) {
            try {
                l.run();
            } catch (RuntimeException e) {
                log.warn("a trust bundle listener failed", e);
            }
        }
    }

    static List<X509Certificate> parse(List<String> pems) throws CertificateException {
        CertificateFactory f = CertificateFactory.getInstance("X.509");
        List<X509Certificate> out = new ArrayList<>();
        for (String pem : pems) {
            out.add((X509Certificate) f.generateCertificate(
                    new ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII))));
        }
        return out;
    }
}
