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
 * <p>The two sources race: a certificate's answer carries the bundle as it was when the CA signed,
 * and may arrive after the watch already delivered a rotation step. Such a stale answer must not
 * undo the step (losing the added root would refuse every peer once the CA switches to it), so an
 * update that shares a root with the current bundle is taken only if it moves forward in rotation
 * order (see {@link #stale}); a bundle with no root in common (a replaced CA) is always taken.
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
            if (stale(current.roots(), roots)) {
                log.info("ignoring a trust bundle older than the current one ({} root(s) against {})", roots.size(),
                        current.roots().size());
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

    /**
     * Whether {@code next} is an earlier step of the rotation that led to {@code current}. Rotation
     * only ever adds a root newer than all it keeps (add) or drops roots older than all it keeps
     * (retire); so an update that drops a root newer than every root it has, or adds back only roots
     * older than every current one, comes from before the current bundle. Bundles with no root in
     * common are never stale (the CA was replaced).
     */
    static boolean stale(List<X509Certificate> current, List<X509Certificate> next) {
        if (next.stream().noneMatch(current::contains)) {
            return false;
        }
        List<X509Certificate> dropped = current.stream().filter(r -> !next.contains(r)).toList();
        List<X509Certificate> added = next.stream().filter(r -> !current.contains(r)).toList();
        return !(dropped.isEmpty() && added.isEmpty())
                && dropped.stream().allMatch(d -> next.stream().allMatch(n -> d.getNotBefore().after(n.getNotBefore())))
                && added.stream()
                        .allMatch(a -> current.stream().allMatch(c -> a.getNotBefore().before(c.getNotBefore())));
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
