package dev.wisp.e2e;

import java.util.concurrent.Callable;

/**
 * Runs test code inside a network namespace: a fresh platform thread enters it with
 * {@code setns(2)} and creates its sockets there (they stay in that namespace whichever thread uses
 * them later).
 */
final class Netns {
    private Netns() {}

    static <T> T in(String netns, Callable<T> body) throws Exception {
        return dev.wisp.testing.Netns.call(netns, body, java.time.Duration.ofSeconds(60));
    }

    /** GET {@code path} from an HTTP server on 127.0.0.1:{@code port} of {@code netns}; the body. */
    static String httpGet(String netns, int port, String path) throws Exception {
        return dev.wisp.local.InNetns.httpGet(netns, port, path);
    }
}
