package dev.wisp.linux;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * One {@code struct pollfd} ({@code int fd; short events; short revents}) and {@code poll(2)} over it:
 * how a non-blocking descriptor's owner waits until it can read or write. Allocated once per waiting
 * thread where waits are frequent (a batch's sends), so that a wait allocates nothing. Not
 * thread-safe: one waiter at a time.
 */
final class PollFd {
    /** {@code POLLIN}: there is data to read. */
    static final short IN = 0x1;
    /** {@code POLLOUT}: writing will not block. */
    static final short OUT = 0x4;
    private static final MethodHandle POLL = Libc.plainDowncall("poll", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));

    private final MemorySegment pollfd;

    PollFd(Arena arena) {
        this.pollfd = arena.allocate(8, 4);
    }

    /**
     * Waits up to {@code timeoutMillis} for {@code events} ({@link #IN}, {@link #OUT}) on {@code fd}.
     * Returns whether it is ready; a signal or a failure reads as not ready (the caller's next call on
     * the descriptor tells what is wrong).
     */
    boolean await(int fd, short events, int timeoutMillis) {
        pollfd.set(ValueLayout.JAVA_INT, 0, fd);
        pollfd.set(ValueLayout.JAVA_SHORT, 4, events);
        pollfd.set(ValueLayout.JAVA_SHORT, 6, (short) 0);
        try {
            return (int) POLL.invokeExact(pollfd, 1L, timeoutMillis) > 0;
        } catch (Throwable t) {
            throw new IllegalStateException("poll: unexpected failure of the native call", t);
        }
    }
}
