package dev.wisp.spiffe;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.internal.Pem;
import dev.wisp.spiffe.internal.SecureFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;

/**
 * The root certificates a trust domain's certificates chain to. Immutable: rotation produces a new
 * bundle ({@link #withRoot}, {@link #withoutRoot}) that holders swap in atomically.
 */
public record TrustBundle(String trustDomain, List<X509Certificate> roots) {
    public TrustBundle {
        SpiffeId.requireTrustDomain(trustDomain);
        roots = List.copyOf(requireNonNull(roots, "roots"));
        if (roots.isEmpty()) {
            throw new IllegalArgumentException("a trust bundle for " + trustDomain + " needs at least one root");
        }
        if (roots.stream().distinct().count() != roots.size()) {
            throw new IllegalArgumentException("the trust bundle for " + trustDomain + " lists a root twice");
        }
    }

    public static TrustBundle of(String trustDomain, X509Certificate... roots) {
        return new TrustBundle(trustDomain, List.of(roots));
    }

    /** Parses the {@code CERTIFICATE} blocks of {@code pem} as the roots of {@code trustDomain}. */
    public static TrustBundle fromPem(String trustDomain, String pem) {
        requireNonNull(pem, "pem");
        return new TrustBundle(trustDomain, Pem.certificates(pem, "trust bundle of " + trustDomain));
    }

    /** Reads a PEM bundle file. */
    public static TrustBundle read(String trustDomain, Path file) throws IOException {
        requireNonNull(file, "file");
        return fromPem(trustDomain, Files.readString(file, StandardCharsets.US_ASCII));
    }

    /** This bundle plus {@code root} (unchanged if already present). */
    public TrustBundle withRoot(X509Certificate root) {
        requireNonNull(root, "root");
        if (roots.contains(root)) {
            return this;
        }
        List<X509Certificate> next = new ArrayList<>(roots);
        next.add(root);
        return new TrustBundle(trustDomain, next);
    }

    /** This bundle without {@code root}; refuses to remove the last root. */
    public TrustBundle withoutRoot(X509Certificate root) {
        requireNonNull(root, "root");
        List<X509Certificate> next = new ArrayList<>(roots);
        next.remove(root);
        return next.size() == roots.size() ? this : new TrustBundle(trustDomain, next);
    }

    public boolean contains(X509Certificate root) {
        return roots.contains(root);
    }

    public String toPem() {
        return Pem.encode(roots);
    }

    /** Writes the bundle as PEM (mode 0644: roots are public). */
    public void write(Path file) throws IOException {
        SecureFiles.writePublic(file, toPem());
    }

    @Override
    public String toString() {
        return "TrustBundle[" + trustDomain + ", " + roots.size() + " root(s)]";
    }
}
