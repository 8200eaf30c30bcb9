package dev.wisp.e2e;

import dev.wisp.linux.Libc;
import dev.wisp.linux.NativeException;
import dev.wisp.linux.Sockets;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Function;

/**
 * A stand-in for the node agent's listeners, on raw descriptors through FFM. In relay mode it reads
 * {@code SO_ORIGINAL_DST} from each accepted socket with getsockopt and forwards the bytes to that
 * destination (the way the agent's 15001 listener would, minus HBONE); in answer mode it replies
 * with a line naming what it saw and closes. Threads are created from the thread that created the
 * listener, so they inherit its network namespace (upstream sockets are made there).
 */
final class StandInAgent implements AutoCloseable {
    /** What one accepted connection looked like. */
    record Accepted(InetSocketAddress local, InetSocketAddress remote, InetSocketAddress originalDst) {}

    private final int listenFd;
    private final Function<Accepted, String> answer; // null: relay mode
    private final int upstreamMark;
    final List<Accepted> accepted = new CopyOnWriteArrayList<>();
    final List<Throwable> failures = new CopyOnWriteArrayList<>();
    private final Thread acceptor;
    private volatile boolean closed;

    private StandInAgent(int listenFd, Function<Accepted, String> answer, int upstreamMark) {
        this.listenFd = listenFd;
        this.answer = answer;
        this.upstreamMark = upstreamMark;
        this.acceptor = Thread.ofPlatform().daemon().name("stand-in-" + listenFd).unstarted(this::acceptLoop);
    }

    /** A relay on {@code address}; must be called on a thread in the wanted network namespace. */
    static StandInAgent relay(InetSocketAddress address, int upstreamMark) throws NativeException {
        StandInAgent a = new StandInAgent(Sockets.listen(address, 128), null, upstreamMark);
        a.acceptor.start();
        return a;
    }

    /** A listener that answers each connection with {@code answer.apply(what it saw)}. */
    static StandInAgent answering(InetSocketAddress address, Function<Accepted, String> answer)
            throws NativeException {
        StandInAgent a = new StandInAgent(Sockets.listen(address, 128), answer, 0);
        a.acceptor.start();
        return a;
    }

    int fd() {
        return listenFd;
    }

    private void acceptLoop() {
        Sockets.acceptUntilClosed(listenFd, () -> closed, fd -> Thread.ofPlatform().daemon().start(() -> handle(fd)),
                failures::add);
    }

    private void handle(int fd) {
        int upstream = -1;
        try {
            InetSocketAddress local = Sockets.localAddress(fd);
            InetSocketAddress remote = Sockets.peerAddress(fd);
            InetSocketAddress orig = null;
            try {
                orig = Sockets.originalDestination(fd);
            } catch (NativeException e) {
                // No redirect record: a direct connection (answer mode records it as such).
                orig = null;
            }
            Accepted seen = new Accepted(local, remote, orig);
            accepted.add(seen);
            if (answer != null) {
                writeAll(fd, answer.apply(seen).getBytes(StandardCharsets.UTF_8));
                return;
            }
            if (orig == null) {
                throw new IllegalStateException("relay accepted " + remote + " without an original destination");
            }
            upstream = Sockets.connect(orig, upstreamMark);
            int up = upstream;
            Thread back = Thread.ofPlatform().daemon().start(() -> pump(up, fd));
            pump(fd, upstream);
            back.join();
        } catch (Throwable t) {
            failures.add(t);
        } finally {
            closeQuietly(fd);
            if (upstream >= 0) {
                closeQuietly(upstream);
            }
        }
    }

    private void pump(int from, int to) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(16384);
            MemorySegment err = Libc.newErrnoBuffer(arena);
            while (true) {
                long n = Libc.read(from, buf, buf.byteSize(), err);
                if (n <= 0) {
                    break;
                }
                long off = 0;
                while (off < n) {
                    off += Libc.write(to, buf.asSlice(off), n - off, err);
                }
            }
            Sockets.shutdownOutput(to);
        } catch (NativeException e) {
            // A reset from either side ends the pump; the other direction ends on its own.
            failures.add(e);
        }
    }

    private static void writeAll(int fd, byte[] bytes) throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocateFrom(java.lang.foreign.ValueLayout.JAVA_BYTE, bytes);
            MemorySegment err = Libc.newErrnoBuffer(arena);
            long off = 0;
            while (off < bytes.length) {
                off += Libc.write(fd, seg.asSlice(off), bytes.length - off, err);
            }
        }
    }

    private void closeQuietly(int fd) {
        try {
            Libc.close(fd);
        } catch (NativeException e) {
            failures.add(e);
        }
    }

    @Override
    public void close() throws NativeException {
        closed = true;
        Libc.close(listenFd);
    }
}
