package dev.wisp.controlplane.ca;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.ca.CertificateAuthority;
import java.io.IOException;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code wisp ca rotate}: the CA's three rotation steps ({@code add} → {@code switch} →
 * {@code retire}) driven on the running control plane, each followed by pushing the new bundle to
 * whoever watches it ({@code bundleChanged}: agents, waypoints, and through the agents the pods'
 * Workload API streams).
 *
 * <p>The phase is not stored apart: it is read from the CA itself, whose directory already keeps
 * everything a step changes ({@code next-root-*.pem} between add and switch, {@code bundle.pem}
 * with the old root between switch and retire), so a control plane restarted between two steps is
 * in the same phase. A step out of order is refused with the phase and the step that comes next.
 *
 * <p>Threads: steps are serialised on this object's monitor; {@link #status} reads without it.
 */
public final class RootRotation {
    private static final Logger log = LoggerFactory.getLogger(RootRotation.class);

    /** Where a rotation stands, and the step that comes next. */
    public enum Phase {
        /** One root signs and is the only one trusted. */
        STABLE(Step.ADD),
        /** A new root is trusted (pushed to every watcher) and does not sign yet. */
        ADDED(Step.SWITCH),
        /** The new root signs; the old one stays trusted until its certificates have been renewed. */
        SWITCHED(Step.RETIRE);

        private final Step next;

        Phase(Step next) {
            this.next = next;
        }

        public Step next() {
            return next;
        }
    }

    /** A rotation step, as the admin API and the command name it. */
    public enum Step {
        ADD, SWITCH, RETIRE;

        public String label() {
            return name().toLowerCase(Locale.ROOT);
        }

        /** {@code add}, {@code switch} or {@code retire}. */
        public static Step parse(String text) {
            for (Step s : values()) {
                if (s.label().equals(text)) {
                    return s;
                }
            }
            throw new IllegalArgumentException("step: '" + text + "' is not add, switch or retire");
        }
    }

    /**
     * The CA's rotation state: {@code old} are the trusted roots that neither sign nor are about to
     * (what {@code retire} removes).
     */
    public record Status(Phase phase, X509Certificate signingRoot, List<X509Certificate> trusted,
            Optional<X509Certificate> added, List<X509Certificate> old, boolean pluggedIn) {
        public Status {
            trusted = List.copyOf(trusted);
            old = List.copyOf(old);
        }
    }

    /** A step the current phase does not allow; the message names the phase and the next step. */
    public static final class OutOfOrderException extends RuntimeException {
        OutOfOrderException(String message) {
            super(message);
        }
    }

    private final Supplier<CertificateAuthority> ca;
    private final boolean pluggedIn;
    private final Runnable bundleChanged;

    /**
     * @param ca the live CA, null while there is none yet
     * @param pluggedIn an operator's CA ({@code --cacerts}): refused, its files are the operator's
     * @param bundleChanged called after each step, once the CA's bundle or signer changed
     */
    public RootRotation(Supplier<CertificateAuthority> ca, boolean pluggedIn, Runnable bundleChanged) {
        this.ca = requireNonNull(ca, "ca");
        this.pluggedIn = pluggedIn;
        this.bundleChanged = requireNonNull(bundleChanged, "bundleChanged");
    }

    /** The state now, or empty while the control plane has no CA (no valid configuration yet). */
    public Optional<Status> status() {
        CertificateAuthority authority = ca.get();
        return authority == null ? Optional.empty() : Optional.of(status(authority));
    }

    private Status status(CertificateAuthority authority) {
        X509Certificate signing = authority.signingRoot();
        Optional<X509Certificate> added = authority.addedRoot();
        List<X509Certificate> trusted = authority.bundle().roots();
        List<X509Certificate> old = trusted.stream()
                .filter(r -> !r.equals(signing) && !added.map(r::equals).orElse(false)).toList();
        Phase phase = added.isPresent() ? Phase.ADDED : old.isEmpty() ? Phase.STABLE : Phase.SWITCHED;
        return new Status(phase, signing, trusted, added, old, pluggedIn);
    }

    /**
     * Runs {@code step} if the phase allows it, then pushes the bundle.
     *
     * @throws OutOfOrderException when the phase does not allow it (or the CA is plugged in)
     * @throws IllegalStateException while there is no CA yet
     * @throws IOException when the CA directory cannot be written (the CA is unchanged)
     */
    public synchronized Status step(Step step) throws IOException {
        requireNonNull(step, "step");
        CertificateAuthority authority = ca.get();
        if (authority == null) {
            throw new IllegalStateException("the control plane has no CA yet (no valid configuration read); retry");
        }
        if (pluggedIn) {
            throw new OutOfOrderException("the CA is plugged in (--cacerts): its roots are the operator's files; "
                    + "rotate them there and restart the control plane");
        }
        Status before = status(authority);
        if (before.phase().next() != step) {
            throw new OutOfOrderException("cannot " + step.label() + ": " + describe(before) + "; the next step is '"
                    + before.phase().next().label() + "'");
        }
        switch (step) {
            case ADD -> authority.addRoot();
            case SWITCH -> authority.switchSigning(before.added().orElseThrow());
            case RETIRE -> {
                for (X509Certificate root : before.old()) {
                    authority.retireRoot(root);
                }
            }
        }
        Status after = status(authority);
        log.info("CA rotation step '{}' done: {}", step.label(), describe(after));
        bundleChanged.run();
        return after;
    }

    /** One line: the phase in words, with root serials. */
    public static String describe(Status s) {
        return switch (s.phase()) {
            case STABLE -> "root " + serial(s.signingRoot()) + " signs and is the only trusted root";
            case ADDED ->
                "root " + serial(s.added().orElseThrow()) + " was added and is trusted but does not sign yet; "
                        + "root " + serial(s.signingRoot()) + " signs";
            case SWITCHED -> "root " + serial(s.signingRoot()) + " signs; the old root(s) " + serials(s.old())
                    + " stay trusted until retired";
        };
    }

    public static String serial(X509Certificate c) {
        return c.getSerialNumber().toString(16);
    }

    private static String serials(List<X509Certificate> certs) {
        return certs.stream().map(RootRotation::serial).collect(Collectors.joining(", "));
    }
}
