package dev.wisp.controlplane.xds;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.Collection;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * Local mode's node credentials: one random 256-bit token per node, written at bootstrap to
 * {@code <state-dir>/node-credentials/<node>.token} (directory 0700, files 0600) for that node's
 * agent to read; tokens survive restarts. Only SHA-256 digests are kept in memory, and lookups go
 * by digest, so that comparing a presented token leaks nothing through timing about stored ones.
 * A node that leaves the configuration loses its token (file deleted, digest revoked).
 */
public final class LocalNodeCredentials implements NodeAuthenticator {
    private static final Pattern NODE_NAME = Pattern.compile("[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?");
    private static final SecureRandom RANDOM = new SecureRandom();
    private final Path dir;
    /** digest (hex) → node; written under this object's monitor, read from gRPC threads. */
    private final Map<String, String> nodesByDigest = new ConcurrentHashMap<>();
    /** Digests of removed nodes' tokens → node, the latest {@link #REVOKED_KEPT}; guarded by itself. */
    private final Map<String, String> revoked = java.util.Collections.synchronizedMap(new java.util.LinkedHashMap<>() {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, String> eldest) {
            return size() > REVOKED_KEPT;
        }
    });
    /** How many revoked tokens are remembered by name (older ones are refused as unknown). */
    static final int REVOKED_KEPT = 4096;

    public LocalNodeCredentials(Path stateDir) {
        this.dir = requireNonNull(stateDir, "stateDir").resolve("node-credentials");
        try {
            Files.createDirectories(dir,
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create " + dir + ": " + e.getMessage(), e);
        }
    }

    /** The file holding {@code node}'s token. */
    public Path tokenFile(String node) {
        return dir.resolve(node + ".token");
    }

    /**
     * Makes sure every node of {@code nodes} has a token (new ones are created, existing ones
     * loaded), and revokes the tokens of nodes not in it: their files are deleted (a node added
     * again gets a new token) and a revoked token is answered {@link Revoked}.
     */
    public synchronized void issue(Collection<String> nodes) {
        for (var it = nodesByDigest.entrySet().iterator(); it.hasNext();) {
            var e = it.next();
            if (!nodes.contains(e.getValue())) {
                try {
                    Files.deleteIfExists(tokenFile(e.getValue()));
                } catch (IOException ex) {
                    throw new UncheckedIOException("cannot revoke the credential of removed node " + e.getValue()
                            + " (" + tokenFile(e.getValue()) + "): " + ex.getMessage(), ex);
                }
                revoked.put(e.getKey(), e.getValue());
                it.remove();
            }
        }
        for (String node : nodes) {
            if (!NODE_NAME.matcher(node).matches()) {
                throw new IllegalArgumentException("'" + node + "' is not a valid node name");
            }
            Path file = tokenFile(node);
            try {
                String token;
                if (Files.exists(file)) {
                    token = Files.readString(file, StandardCharsets.US_ASCII).trim();
                } else {
                    byte[] raw = new byte[32];
                    RANDOM.nextBytes(raw);
                    token = Base64.getUrlEncoder().withoutPadding().encodeToString(raw);
                    Path tmp = dir.resolve("." + node + ".tmp");
                    Files.deleteIfExists(tmp);
                    Files.createFile(tmp,
                            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
                    Files.writeString(tmp, token + "\n", StandardCharsets.US_ASCII);
                    Files.move(tmp, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
                }
                nodesByDigest.put(NodeAuthenticator.digest(token), node);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot issue the credential of node " + node + " in " + dir + ": "
                        + e.getMessage(), e);
            }
        }
    }

    @Override
    public Result authenticate(String credential) {
        String digest = credential == null || credential.isEmpty() || credential.length() > 512
                ? null
                : NodeAuthenticator.digest(credential);
        String node = digest == null ? null : nodesByDigest.get(digest);
        String gone = digest == null || node != null ? null : revoked.get(digest);
        if (gone != null) {
            return new Revoked(gone, "node " + gone + "'s credential was revoked when Node " + gone
                    + " left the mesh's configuration; a Node added again gets a new token file");
        }
        return node == null
                ? new Refused("node credential not recognised; use the token the control plane issued for this node "
                        + "(<state-dir>/node-credentials/<node>.token)")
                : new Authenticated(node);
    }
}
