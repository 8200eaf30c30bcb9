package dev.wisp.controlplane.xds;

import static java.util.Objects.requireNonNull;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * Turns the bearer credential of an agent's call into the node it may speak for. Local mode:
 * per-node tokens issued at bootstrap ({@link LocalNodeCredentials}); on Kubernetes a projected
 * service-account token checked with a TokenReview, whose pod's {@code spec.nodeName} (from the
 * control plane's own view of the cluster) names the node.
 */
public interface NodeAuthenticator {
    /**
     * What {@code credential} authenticates. Must not throw for hostile input; may block (a
     * TokenReview), so it is called on gRPC's executor, never on an event loop.
     */
    Result authenticate(String credential);

    /** The outcome of one authentication. */
    sealed interface Result permits Authenticated, Refused, Revoked {}

    /** The credential speaks for {@code node}. */
    record Authenticated(String node) implements Result {
        public Authenticated {
            requireNonNull(node, "node");
        }
    }

    /**
     * The credential speaks for no node; {@code reason} goes back to the agent, so it says what to
     * check and never repeats the credential.
     */
    record Refused(String reason) implements Result {
        public Refused {
            requireNonNull(reason, "reason");
        }
    }

    /**
     * The credential was {@code node}'s and was revoked (the node left the mesh's configuration):
     * refused, and counted for that node; {@code reason} goes back to the agent.
     */
    record Revoked(String node, String reason) implements Result {
        public Revoked {
            requireNonNull(node, "node");
            requireNonNull(reason, "reason");
        }
    }

    /**
     * The SHA-256 of a credential (hex): what authenticators keep and look up instead of the
     * credential, so that neither memory nor lookup timing reveals one.
     */
    static String digest(String credential) {
        try {
            return HexFormat.of().formatHex(
                    MessageDigest.getInstance("SHA-256").digest(credential.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JDK", e);
        }
    }
}
