package dev.wisp.testing;

/** Teardown of what a test's setup got as far as opening. */
public final class Closeables {
    private Closeables() {}

    /**
     * Closes each of {@code resources} in order, skipping {@code null}s (what setup never reached);
     * every one is closed even when an earlier one fails, and the first failure is thrown with the
     * later ones suppressed.
     */
    public static void closeAll(AutoCloseable... resources) throws Exception {
        Exception first = null;
        for (AutoCloseable r : resources) {
            if (r == null) {
                continue;
            }
            try {
                r.close();
            } catch (Exception e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }
}
