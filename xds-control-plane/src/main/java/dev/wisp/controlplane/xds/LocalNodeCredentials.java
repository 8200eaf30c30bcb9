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
 */
public final class LocalNodeCredentials implements NodeAuthenticator {
    private static final Pattern NODE_NAME = Pattern.compile("[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?");
    private static final SecureRandom RANDOM = new SecureRandom();
    private final Path dir;
    /** digest (hex) → node; written under this object's monitor, read from gRPC threads. */
    private final Map<String, String> nodesByDigest = new ConcurrentHashMap<>();

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

    /** Makes sure every node has a token (new ones are created, existing ones loaded). */
    public synchronized void issue(Collection<String> nodes) {
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
        String node = credential == null || credential.isEmpty() || credential.length() > 512
                ? null
                : nodesByDigest.get(NodeAuthenticator.digest(credential));
        return node == null
                ? new Refused("node credential not recognised; use the token the control plane issued for this node "
                        + "(<state-dir>/node-credentials/<node>.token)")
                : new Authenticated(node);
    }
}
