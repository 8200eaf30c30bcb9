package dev.wisp.node.capture;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.bpf.capture.PodRef;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One file of the pods directory ({@code --pods-dir}): how the node's pod plumbing (istio-cni in
 * Kubernetes, {@code LocalCluster.writePodFile} locally) tells the agent about a local pod.
 *
 * <pre>{"uid": "a", "cgroup": "/sys/fs/cgroup/…/a", "netns": "/var/run/netns/…", "ips": ["10.0.0.5"]}</pre>
 *
 * The file is named {@code <uid>.json}; it appears when the pod starts and disappears when it is
 * deleted. Pure: parsing only; the content is treated as untrusted (size cap, literal IPs only,
 * absolute paths, the uid must match the file name).
 */
final class PodFile {
    static final int MAX_BYTES = 64 * 1024;
    static final String SUFFIX = ".json";
    private static final ObjectMapper JSON = new ObjectMapper();

    private PodFile() {}

    /** Beside {@code <uid>.json}, the agent's confirmation that it enrolled the pod: {@code <uid>.enrolled}. */
    static final String ENROLLED = ".enrolled";

    /** Where the agent confirms that it enrolled pod {@code uid} (the file holds the pod's netns path). */
    static Path confirmation(Path podsDir, String uid) {
        return podsDir.resolve(uid + ENROLLED);
    }

    /** rw-r--r--: what the pods directory's files and the CNI configurations are written with. */
    static final Set<PosixFilePermission> READABLE = PosixFilePermissions.fromString("rw-r--r--");

    /** {@link #writeAtomically(Path, String, byte[], Set)} with mode 0644. */
    static void writeAtomically(Path dir, String name, byte[] content) throws IOException {
        writeAtomically(dir, name, content, READABLE);
    }

    /**
     * Writes {@code content} as {@code dir/name} atomically: into the dot-file {@code .name.tmp}
     * (created with {@code mode}, flushed to disk), then renamed over the target, so a reader never
     * sees half a file (the pods directory's watcher and the container runtime ignore dot-files).
     */
    static void writeAtomically(Path dir, String name, byte[] content, Set<PosixFilePermission> mode)
            throws IOException {
        Path tmp = dir.resolve("." + name + ".tmp");
        Files.deleteIfExists(tmp);
        Files.createFile(tmp, PosixFilePermissions.asFileAttribute(mode));
        Files.setPosixFilePermissions(tmp, mode); // the umask may have narrowed it
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(content));
            ch.force(true);
        }
        Files.move(tmp, dir.resolve(name), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    /** Writes {@code pod}'s file into {@code podsDir} atomically (see {@link #writeAtomically}). */
    static void write(Path podsDir, PodRef pod) throws IOException {
        write(podsDir, pod, false);
    }

    /**
     * {@link #write(Path, PodRef)}; {@code discovered}: the agent found the pod running without a CNI
     * call ({@link PodDiscovery}), said in the file as {@code "discovered": true} for whoever reads it.
     */
    static void write(Path podsDir, PodRef pod, boolean discovered) throws IOException {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("uid", pod.id());
        body.put("cgroup", pod.cgroup().toString());
        body.put("netns", pod.netns().toString());
        body.put("ips", pod.ips().stream().map(InetAddress::getHostAddress).toList());
        if (discovered) {
            body.put("discovered", true);
        }
        writeAtomically(podsDir, pod.id() + SUFFIX, JSON.writeValueAsBytes(body));
    }

    /** The uid a pods-directory file name stands for, or null when the file is not a pod file. */
    static String uidOf(Path file) {
        String name = file.getFileName().toString();
        return name.endsWith(SUFFIX) && !name.startsWith(".")
                ? name.substring(0, name.length() - SUFFIX.length())
                : null;
    }

    /**
     * Reads and parses {@code file}, reading at most one byte past {@link #MAX_BYTES}, so that a huge
     * file in the directory costs no more memory than a file just over the limit.
     */
    static PodRef read(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            return parse(file, in.readNBytes(MAX_BYTES + 1));
        }
    }

    /** Parses {@code bytes} read from {@code file}. */
    static PodRef parse(Path file, byte[] bytes) throws IOException {
        JsonNode n = BoundedJson.object(bytes, MAX_BYTES, "pod file " + file, IOException::new);
        String uid = text(file, n, "uid");
        if (!uid.equals(uidOf(file))) {
            throw new IOException("pod file " + file + " names uid '" + uid + "': the file must be <uid>.json");
        }
        Path cgroup = absolute(file, text(file, n, "cgroup"));
        Path netns = absolute(file, text(file, n, "netns"));
        JsonNode ips = n.get("ips");
        if (ips == null || !ips.isArray() || ips.isEmpty() || ips.size() > 16) {
            throw new IOException("pod file " + file + ": 'ips' must be a list of 1-16 IP addresses");
        }
        List<InetAddress> addrs = new ArrayList<>();
        for (JsonNode ip : ips) {
            try {
                addrs.add(InetAddress.ofLiteral(ip.asText()));
            } catch (IllegalArgumentException e) {
                throw new IOException("pod file " + file + ": '" + ip.asText() + "' is not an IP address", e);
            }
        }
        try {
            return new PodRef(uid, cgroup, netns, addrs);
        } catch (IllegalArgumentException e) {
            throw new IOException("pod file " + file + ": " + e.getMessage(), e);
        }
    }

    private static String text(Path file, JsonNode n, String field) throws IOException {
        JsonNode v = n.get(field);
        if (v == null || !v.isTextual() || v.asText().isEmpty()) {
            throw new IOException("pod file " + file + " lacks the text field '" + field + "'");
        }
        return v.asText();
    }

    private static Path absolute(Path file, String path) throws IOException {
        Path p;
        try {
            p = Path.of(path);
        } catch (InvalidPathException e) {
            // Found by PodFileFuzzTest: a NUL in a path escaped as a runtime exception and ended the scan.
            throw new IOException("pod file " + file + ": '" + path + "' is not a path: " + e.getReason(), e);
        }
        if (!p.isAbsolute()) {
            throw new IOException("pod file " + file + ": '" + path + "' must be an absolute path");
        }
        return p.normalize();
    }
}
