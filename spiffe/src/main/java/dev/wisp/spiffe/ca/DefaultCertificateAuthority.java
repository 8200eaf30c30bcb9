package dev.wisp.spiffe.ca;

import dev.wisp.spiffe.CertificateRequest;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.ca.SigningRefusedException.NotAuthorizedException;
import java.io.IOException;
import java.security.KeyPair;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The CA: an immutable signing state swapped atomically on rotation. */
final class DefaultCertificateAuthority implements CertificateAuthority {
    private static final Logger log = LoggerFactory.getLogger(CertificateAuthority.class);
    static final Duration ROOT_VALIDITY = Duration.ofDays(3650);

    /**
     * What signs and what is trusted. {@code nextRoot}/{@code nextKey} hold a root added by
     * {@link #addRoot()} that does not sign yet (both null otherwise).
     */
    record State(X509Certificate signer, PrivateKey signerKey, List<X509Certificate> intermediates,
            X509Certificate signingRoot, TrustBundle bundle, X509Certificate nextRoot, PrivateKey nextKey) {
        State {
            intermediates = List.copyOf(intermediates);
        }
    }

    /** Writes state changes through to disk (or nowhere). Called under the CA's monitor. */
    interface Storage {
        void save(State state) throws IOException;
    }

    private final CaSettings settings;
    private final Storage storage;
    /** Read lock-free by {@link #sign}; replaced only under {@code this} monitor by rotation. */
    private volatile State state;

    DefaultCertificateAuthority(CaSettings settings, State state, Storage storage) {
        this.settings = settings;
        this.state = state;
        this.storage = storage;
    }

    static DefaultCertificateAuthority generate(CaSettings settings, Storage storage) {
        KeyPair keys = CertificateRequest.newP256KeyPair();
        X509Certificate root = Minting.root(settings.trustDomain(), keys, settings.clock().instant(), ROOT_VALIDITY);
        State state = new State(root, keys.getPrivate(), List.of(), root, TrustBundle.of(settings.trustDomain(), root),
                null, null);
        return new DefaultCertificateAuthority(settings, state, storage);
    }

    @Override
    public String trustDomain() {
        return settings.trustDomain();
    }

    @Override
    public CaSettings settings() {
        return settings;
    }

    @Override
    public List<X509Certificate> sign(byte[] csr, Duration ttl, String callerNode) {
        Objects.requireNonNull(callerNode, "callerNode");
        CsrValidator.Validated request = CsrValidator.validate(csr);
        SpiffeId id = request.id();
        authorize(id, callerNode);
        State current = state;
        Instant now = settings.clock().instant();
        Duration lifetime = ttl == null || ttl.isZero() || ttl.isNegative() ? settings.defaultTtl() : ttl;
        if (lifetime.compareTo(settings.maxTtl()) > 0) {
            lifetime = settings.maxTtl();
        }
        Instant notAfter = now.plus(lifetime);
        Instant signerExpiry = current.signer().getNotAfter().toInstant();
        if (notAfter.isAfter(signerExpiry)) {
            notAfter = signerExpiry;
        }
        X509Certificate leaf = Minting.leaf(id, request.publicKey(), current.signer(), current.signerKey(),
                now.minus(Minting.BACKDATE), notAfter);
        log.debug("issued {} to node {} (serial {}, until {})", id, callerNode, leaf.getSerialNumber().toString(16),
                notAfter);
        List<X509Certificate> chain = new ArrayList<>(1 + current.intermediates().size());
        chain.add(leaf);
        chain.addAll(current.intermediates());
        return List.copyOf(chain);
    }

    private void authorize(SpiffeId id, String node) {
        if (!id.trustDomain().equals(settings.trustDomain())) {
            throw new NotAuthorizedException("the requested identity " + id + " is in trust domain "
                    + id.trustDomain() + "; this CA signs only for " + settings.trustDomain());
        }
        if (id.namespace().isEmpty()) {
            throw new NotAuthorizedException("this CA signs only workload identities spiffe://"
                    + settings.trustDomain() + "/ns/<namespace>/sa/<service-account>, not " + id);
        }
        String namespace = id.namespace().orElseThrow();
        String serviceAccount = id.serviceAccount().orElseThrow();
        if (!settings.authorizer().hostsServiceAccount(node, namespace, serviceAccount)) {
            throw new NotAuthorizedException("node '" + node + "' hosts no pod running as service account "
                    + namespace + "/" + serviceAccount + ", so it may not obtain " + id);
        }
    }

    PrivateKey signerKey() {
        return state.signerKey();
    }

    @Override
    public TrustBundle bundle() {
        return state.bundle();
    }

    @Override
    public X509Certificate signingCertificate() {
        return state.signer();
    }

    @Override
    public X509Certificate signingRoot() {
        return state.signingRoot();
    }

    @Override
    public Optional<X509Certificate> addedRoot() {
        return Optional.ofNullable(state.nextRoot());
    }

    @Override
    public synchronized X509Certificate addRoot() throws IOException {
        State current = state;
        if (current.nextRoot() != null) {
            throw new IllegalStateException("a new root (serial " + current.nextRoot().getSerialNumber().toString(16)
                    + ") was already added and does not sign yet; switch signing to it first");
        }
        KeyPair keys = CertificateRequest.newP256KeyPair();
        X509Certificate root = Minting.root(settings.trustDomain(), keys, settings.clock().instant(), ROOT_VALIDITY);
        State next = new State(current.signer(), current.signerKey(), current.intermediates(), current.signingRoot(),
                current.bundle().withRoot(root), root, keys.getPrivate());
        storage.save(next);
        state = next;
        log.info("added root {} to the trust bundle of {}; it does not sign yet", serial(root), trustDomain());
        return root;
    }

    @Override
    public synchronized void switchSigning(X509Certificate root) throws IOException {
        Objects.requireNonNull(root, "root");
        State current = state;
        if (!root.equals(current.nextRoot())) {
            throw new IllegalArgumentException("root " + serial(root)
                    + " is not the root added by addRoot(); add a root before switching signing to it");
        }
        State next = new State(root, current.nextKey(), List.of(), root, current.bundle(), null, null);
        storage.save(next);
        state = next;
        log.info("now signing with root {}; the previous signer stays in the bundle until retired", serial(root));
    }

    @Override
    public synchronized void retireRoot(X509Certificate root) throws IOException {
        Objects.requireNonNull(root, "root");
        State current = state;
        if (!current.bundle().contains(root)) {
            throw new IllegalArgumentException("root " + serial(root) + " is not in the trust bundle");
        }
        if (root.equals(current.nextRoot()) || root.equals(current.signingRoot())) {
            throw new IllegalArgumentException("root " + serial(root)
                    + " is still in use (it signs, or is about to); switch signing to another root first");
        }
        State next = new State(current.signer(), current.signerKey(), current.intermediates(), current.signingRoot(),
                current.bundle().withoutRoot(root), current.nextRoot(), current.nextKey());
        storage.save(next);
        state = next;
        log.info("retired root {} from the trust bundle of {}", serial(root), trustDomain());
    }

    private static String serial(X509Certificate cert) {
        return cert.getSerialNumber().toString(16);
    }
}
