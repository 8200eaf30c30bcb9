package dev.wisp.node.workloadapi;

import java.time.Duration;
import dev.wisp.base.SocketFile;
import dev.wisp.base.Threads;
import dev.wisp.linux.Libc;
import dev.wisp.linux.NativeException;
import dev.wisp.linux.Sockets;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.function.IntFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One pod's Workload API socket: a unix socket the pod's processes connect to, whose every caller
 * is attested before a byte of it is read: {@code SO_PEERCRED} gives the pid the kernel recorded at
 * {@code connect}, and the attestation given (the agent's: {@code /proc/<pid>/cgroup} against the
 * pod's cgroup, {@link CallerAttestation}) decides whether that process is the pod's. A refused caller's connection is closed at once (it reads end of
 * stream: no SVID, no bundle, no gRPC status), and {@code onRefused} is told. An attested connection
 * is relayed, byte for byte, to the pod's Workload API server on an agent-private socket.
 *
 * <p>Why a relay: the JDK's unix channels (and Netty's NIO transport over them) expose neither the
 * descriptor nor the peer's pid ({@code ExtendedSocketOptions.SO_PEERCRED} gives uid and gid only,
 * and every local-mesh pod runs as root), so the socket the pod sees is a native one.
 *
 * <p><b>Threads.</b> One platform thread ({@code wisp-wapi-<pod>}) blocks in {@code accept} and
 * attests; each relayed connection has two platform threads, one per direction, blocking in
 * {@code read} (native calls pin a virtual thread's carrier, so none are virtual). A direction that
 * reads end of stream half-closes the other side; the connection's descriptors are closed when both
 * directions have ended. {@link #close} shuts the listening socket (which wakes {@code accept}) and
 * every relayed connection down, then removes the socket file while it is still its own.
 */
final class PodSocket implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(PodSocket.class);
    private static final int BUFFER = 16 * 1024;
    private final String pod;
    private final IntFunction<CallerAttestation> attest;
    /** Removed on close only while it is ours (a new agent taking over binds its own at the same path). */
    private final SocketFile socket;
    private final Path server;
    private final Consumer<CallerAttestation> onRefused;
    private final int listenFd;
    /** Relayed connections' pod-side descriptors; concurrent (acceptor adds, relays remove). */
    private final Set<PodEnd> open = ConcurrentHashMap.newKeySet();
    private final Thread acceptor;
    private volatile boolean closed;

    private PodSocket(String pod, IntFunction<CallerAttestation> attest, SocketFile socket, Path server,
            Consumer<CallerAttestation> onRefused, int listenFd) {
        this.pod = pod;
        this.attest = attest;
        this.socket = socket;
        this.server = server;
        this.onRefused = onRefused;
        this.listenFd = listenFd;
        this.acceptor = Thread.ofPlatform().daemon().name("wisp-wapi-" + pod).unstarted(this::acceptLoop);
    }

    /**
     * Binds {@code socket} (mode 0666: who may use it is decided per caller, by attestation) for
     * {@code pod}, relaying callers whose pid {@code attest} allows to {@code server}.
     */
    static PodSocket open(String pod, IntFunction<CallerAttestation> attest, Path socket, Path server,
            Consumer<CallerAttestation> onRefused) throws IOException {
        Files.createDirectories(socket.getParent());
        Files.deleteIfExists(socket);
        int fd;
        try {
            fd = Sockets.listenUnix(socket, 64);
        } catch (NativeException e) {
            throw new IOException("cannot serve the Workload API for pod " + pod + " on " + socket + ": "
                    + e.getMessage(), e);
        }
        SocketFile file;
        try {
            file = SocketFile.bound(socket);
            Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-rw-rw-"));
        } catch (IOException e) {
            closeQuietly(fd);
            throw e;
        }
        PodSocket s = new PodSocket(pod, attest, file, server, onRefused, fd);
        s.acceptor.start();
        return s;
    }

    Path socket() {
        return socket.path();
    }

    private void acceptLoop() {
        Sockets.acceptUntilClosed(listenFd, () -> closed, fd -> {
            try {
                serve(fd);
            } catch (RuntimeException e) {
                LOG.warn("Workload API connection on {} failed: {}", socket.path(), e.toString());
                closeQuietly(fd);
            }
        }, e -> LOG.error("Workload API socket {} of pod {} stopped accepting: {}", socket.path(), pod,
                e.getMessage()));
    }

    private void serve(int fd) {
        CallerAttestation a;
        try {
            Sockets.PeerCredentials cred = Sockets.peerCredentials(fd);
            a = attest.apply(cred.pid());
        } catch (NativeException e) {
            a = new CallerAttestation(false, "no peer credentials: " + e.getMessage());
        }
        if (!a.allowed()) {
            closeQuietly(fd);
            onRefused.accept(a);
            return;
        }
        SocketChannel upstream;
        try {
            upstream = SocketChannel.open(UnixDomainSocketAddress.of(server));
        } catch (IOException e) {
            LOG.warn("Workload API of pod {}: its server {} is unreachable: {}", pod, server, e.getMessage());
            closeQuietly(fd);
            return;
        }
        LOG.debug("Workload API of pod {}: {}", pod, a.reason());
        PodEnd end = new PodEnd(fd);
        open.add(end);
        AtomicInteger directions = new AtomicInteger(2);
        Runnable ended = () -> {
            if (directions.decrementAndGet() == 0) {
                open.remove(end);
                end.close();
                try {
                    upstream.close();
                } catch (IOException e) {
                    LOG.debug("closing the Workload API relay of pod {}: {}", pod, e.toString());
                }
            }
        };
        Thread.ofPlatform().daemon().name("wisp-wapi-" + pod + "-in").start(() -> podToServer(fd, upstream, ended));
        Thread.ofPlatform().daemon().name("wisp-wapi-" + pod + "-out").start(() -> serverToPod(upstream, fd, ended));
    }

    private void podToServer(int fd, SocketChannel upstream, Runnable ended) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(BUFFER);
            MemorySegment err = Libc.newErrnoBuffer(arena);
            for (long n; (n = Libc.read(fd, buf, BUFFER, err)) > 0;) {
                ByteBuffer b = buf.asSlice(0, n).asByteBuffer();
                while (b.hasRemaining()) {
                    upstream.write(b);
                }
            }
            upstream.shutdownOutput();
        } catch (IOException | RuntimeException e) {
            LOG.debug("Workload API relay of pod {} (pod to server) ended: {}", pod, e.toString());
        } finally {
            ended.run();
        }
    }

    private void serverToPod(SocketChannel upstream, int fd, Runnable ended) {
        try (Arena arena = Arena.ofConfined()) {
            ByteBuffer b = ByteBuffer.allocateDirect(BUFFER);
            MemorySegment seg = MemorySegment.ofBuffer(b);
            MemorySegment err = Libc.newErrnoBuffer(arena);
            for (int n; (n = upstream.read(b.clear())) >= 0;) {
                for (long off = 0; off < n;) {
                    off += Libc.write(fd, seg.asSlice(off), n - off, err);
                }
            }
            Sockets.shutdownOutput(fd);
        } catch (IOException | RuntimeException e) {
            LOG.debug("Workload API relay of pod {} (server to pod) ended: {}", pod, e.toString());
        } finally {
            ended.run();
        }
    }

    private static void closeQuietly(int fd) {
        try {
            Libc.close(fd);
        } catch (NativeException e) {
            LOG.debug("close({}): {}", fd, e.getMessage());
        }
    }

    /**
     * A relayed connection's pod-side descriptor: shut down by {@link #close} of the socket and closed
     * by its relay, under its monitor, so a shutdown never reaches a descriptor number already reused.
     */
    private static final class PodEnd {
        private final int fd;
        /** Guarded by this. */
        private boolean closed;

        PodEnd(int fd) {
            this.fd = fd;
        }

        synchronized void shutdown() {
            if (!closed) {
                try {
                    Sockets.shutdown(fd);
                } catch (NativeException e) {
                    LOG.debug("shutdown of a Workload API connection: {}", e.getMessage());
                }
            }
        }

        synchronized void close() {
            if (!closed) {
                closed = true;
                closeQuietly(fd);
            }
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            Sockets.shutdown(listenFd);
        } catch (NativeException e) {
            LOG.debug("shutdown of the Workload API socket {}: {}", socket, e.getMessage());
        }
        Threads.awaitEnd(acceptor, Duration.ofSeconds(5));
        closeQuietly(listenFd);
        open.forEach(PodEnd::shutdown);
        try {
            socket.deleteIfStillOurs();
        } catch (IOException e) {
            LOG.warn("cannot remove the Workload API socket {}: {}", socket.path(), e.getMessage());
        }
    }
}
