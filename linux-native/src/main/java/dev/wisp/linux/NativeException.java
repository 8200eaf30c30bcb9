package dev.wisp.linux;

import java.io.IOException;

/**
 * A Linux call failed. Carries the call's name and {@code errno}, so that callers can react to a
 * specific cause (e.g. {@link Errno#EPERM}) and operators read which call failed and why.
 */
public class NativeException extends IOException {
    private static final long serialVersionUID = 1L;

    private final String call;
    private final int errno;

    public NativeException(String call, int errno, String detail) {
        super(message(call, errno, detail));
        this.call = call;
        this.errno = errno;
    }

    public NativeException(String call, int errno) {
        this(call, errno, null);
    }

    /** The failed call, e.g. {@code "ioctl(TUNSETIFF)"}. */
    public String call() {
        return call;
    }

    /** The positive errno value. */
    public int errno() {
        return errno;
    }

    private static String message(String call, int errno, String detail) {
        StringBuilder sb = new StringBuilder(call).append(" failed: ").append(Errno.name(errno)).append(" (")
                .append(Errno.describe(errno)).append(')');
        String hint = Errno.hint(errno);
        if (hint != null) {
            sb.append(" — ").append(hint);
        }
        if (detail != null && !detail.isEmpty()) {
            sb.append(": ").append(detail);
        }
        return sb.toString();
    }
}
