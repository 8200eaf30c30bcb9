package dev.wisp.linux;

/**
 * A file descriptor this process opened and closes exactly once: what {@link Tun} and
 * {@link UdpBatchSocket} share. {@link #closed()} may be read on any thread (their blocking loops
 * stop when it turns true); {@link #close} is idempotent.
 */
abstract class OwnedDescriptor implements AutoCloseable {
    /** The descriptor; valid until {@link #close}. */
    protected final int fd;
    private volatile boolean closed;

    OwnedDescriptor(int fd) {
        this.fd = fd;
    }

    /** Whether {@link #close} was called. */
    protected final boolean closed() {
        return closed;
    }

    @Override
    public void close() throws NativeException {
        if (closed) {
            return;
        }
        closed = true;
        Libc.close(fd);
    }
}
