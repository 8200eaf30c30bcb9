package dev.wisp.wireguard.uapi;

import dev.wisp.linux.Errno;
import java.time.Duration;
import dev.wisp.base.Threads;
import static java.util.Objects.requireNonNull;

import dev.wisp.base.SocketFile;
import dev.wisp.wireguard.WireGuardDevice;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves the UAPI on {@code <dir>/<iface>.sock} (normally {@code /var/run/wireguard}): one platform
 * thread accepts, one virtual thread per client reads {@code get=1} / {@code set=1} requests until the
 * client closes. The socket is mode 0600 from the moment it can be reached (it hands out the
 * private key; see {@link #bindPrivately}); requests are bounded
 * ({@link #MAX_LINE} characters a line, {@link #MAX_LINES} lines). {@link #close} removes the
 * socket file.
 */
public final class UapiServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(UapiServer.class);
    public static final Path DEFAULT_DIR = Path.of("/var/run/wireguard");
    static final int MAX_LINE = 4096;
    static final int MAX_LINES = 1_000_000;

    private final WireGuardDevice device;
    /** Removed on close only while it is still the socket bound here (one a newer server bound stays). */
    private final SocketFile file;
    private final ServerSocketChannel server;
    private final Thread acceptor;
    private volatile boolean open = true;

    private UapiServer(WireGuardDevice device, SocketFile file, ServerSocketChannel server) {
        this.device = device;
        this.file = file;
        this.server = server;
        this.acceptor = Thread.ofPlatform().name("wg-uapi-" + device.name()).daemon().start(this::acceptLoop);
    }

    /** Binds {@code dir/<name>.sock}, replacing a stale socket file nobody listens on. */
    public static UapiServer start(WireGuardDevice device, Path dir) throws IOException {
        requireNonNull(device, "device");
        Files.createDirectories(dir,
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwxr-xr-x")));
        Path path = dir.resolve(device.name() + ".sock");
        if (Files.exists(path)) {
            boolean live;
            try (SocketChannel probe = SocketChannel.open(UnixDomainSocketAddress.of(path))) {
                live = true;
            } catch (IOException e) {
                live = false;
            }
            if (live) {
                throw new IOException(path + " is in use: is another WireGuard process serving " + device.name() + "?");
            }
            Files.deleteIfExists(path);
        }
        try {
            ServerSocketChannel server = bindPrivately(path, staged -> {});
            try {
                return new UapiServer(device, SocketFile.bound(path), server);
            } catch (IOException | RuntimeException e) {
                server.close();
                throw e;
            }
        } catch (IOException e) {
            throw new IOException("cannot serve the UAPI on " + path + ": " + e.getMessage(), e);
        }
    }

    /**
     * Binds a Unix socket at {@code path} that is never reachable by anyone but this user before it
     * is mode 0600: {@code bind} creates the file with the process umask (typically 0755 for a
     * socket), so it is bound inside a fresh 0700 directory next to {@code path} — which no other
     * user may traverse — made 0600 there, and only then renamed into place (one atomic
     * {@code rename(2)} on the same file system). A process-wide umask would be racy with other
     * threads creating files. {@code afterBind} sees the bound, not yet restricted socket (tests).
     */
    static ServerSocketChannel bindPrivately(Path path, Consumer<Path> afterBind) throws IOException {
        Path staging = Files.createTempDirectory(path.getParent(), "." + path.getFileName() + "-",
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        Path staged = staging.resolve("uapi.sock");
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            server.bind(UnixDomainSocketAddress.of(staged));
            afterBind.accept(staged);
            Files.setPosixFilePermissions(staged, PosixFilePermissions.fromString("rw-------"));
            Files.move(staged, path, StandardCopyOption.ATOMIC_MOVE);
            return server;
        } catch (IOException | RuntimeException e) {
            server.close();
            Files.deleteIfExists(staged);
            throw e;
        } finally {
            Files.deleteIfExists(staging);
        }
    }

    public Path path() {
        return file.path();
    }

    private void acceptLoop() {
        while (open) {
            try {
                SocketChannel client = server.accept();
                Thread.ofVirtual().name("wg-uapi-client").start(() -> serve(client));
            } catch (IOException e) {
                if (open) {
                    LOG.warn("UAPI accept on {} failed: {}", file.path(), e.toString());
                }
                return;
            }
        }
    }

    private void serve(SocketChannel client) {
        try (client;
                InputStream in = Channels.newInputStream(client);
                OutputStream out = Channels.newOutputStream(client)) {
            serve(device, in, out);
        } catch (IOException e) {
            LOG.debug("UAPI client on {} dropped: {}", file.path(), e.toString());
        }
    }

    /**
     * One client's requests, read from {@code input} until it ends, answered on {@code output}: the
     * framing ({@code get=1} / {@code set=1}, bodies to a blank line, bounded lines) and the
     * operations. Throws only the streams' I/O errors or an over-long request's.
     */
    static void serve(WireGuardDevice device, InputStream input, OutputStream out) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(input, StandardCharsets.UTF_8));
        String op;
        while ((op = readLine(in)) != null) {
            List<String> body = new ArrayList<>();
            String line;
            while ((line = readLine(in)) != null && !line.isEmpty()) {
                if (body.size() >= MAX_LINES) {
                    throw new IOException("request longer than " + MAX_LINES + " lines");
                }
                body.add(line);
            }
            String answer = handle(device, op, body);
            out.write(answer.getBytes(StandardCharsets.UTF_8));
            out.flush();
            if (line == null) {
                return;
            }
        }
    }

    static String handle(WireGuardDevice device, String op, List<String> body) {
        switch (op) {
            case "get=1" -> {
                if (!body.isEmpty()) {
                    return "errno=" + Errno.EINVAL + "\n\n";
                }
                return Uapi.get(device) + "errno=0\n\n";
            }
            case "set=1" -> {
                try {
                    Uapi.set(device, body);
                    return "errno=0\n\n";
                } catch (Uapi.UapiException e) {
                    LOG.warn("UAPI set on {} refused: {}", device.name(), e.getMessage());
                    return "errno=" + e.errno() + "\n\n";
                } catch (RuntimeException e) {
                    LOG.warn("UAPI set on {} failed: {}", device.name(), e.toString());
                    return "errno=" + Errno.EIO + "\n\n";
                }
            }
            default -> {
                return "errno=" + Errno.EINVAL + "\n\n";
            }
        }
    }

    private static String readLine(BufferedReader in) throws IOException {
        StringBuilder b = new StringBuilder();
        int c;
        while ((c = in.read()) >= 0) {
            if (c == '\n') {
                return b.toString();
            }
            if (b.length() >= MAX_LINE) {
                throw new IOException("UAPI line longer than " + MAX_LINE + " characters");
            }
            b.append((char) c);
        }
        return b.isEmpty() ? null : b.toString();
    }

    /** Stops serving and removes the socket file, unless another server has bound its own there since. */
    @Override
    public void close() {
        open = false;
        try {
            server.close();
        } catch (IOException e) {
            LOG.debug("closing UAPI socket {}: {}", file.path(), e.toString());
        }
        try {
            file.deleteIfStillOurs();
        } catch (IOException e) {
            LOG.warn("cannot remove {}: {}", file.path(), e.getMessage());
        }
        Threads.awaitEnd(acceptor, Duration.ofSeconds(1));
    }
}
