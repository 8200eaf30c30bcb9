package dev.wisp.base;

/**
 * How a component that owns several others closes them: in the order given, skipping the ones it
 * never opened (null). One that throws does not keep the rest open: every one is closed, then the
 * first failure is thrown with the later ones suppressed on it. Stateless.
 */
public final class Closing {
    private Closing() {}

    /** Closes each non-null part of {@code parts} in order; see the class comment for failures. */
    public static void inOrder(AutoCloseable... parts) {
        Throwable first = null;
        for (AutoCloseable part : parts) {
            if (part == null) {
                continue;
            }
            try {
                part.close();
            } catch (Exception | Error e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        if (first instanceof RuntimeException r) {
            throw r;
        }
        if (first instanceof Error err) {
            throw err;
        }
        if (first != null) {
            throw new IllegalStateException("closing: " + first.getMessage(), first);
        }
    }
}
