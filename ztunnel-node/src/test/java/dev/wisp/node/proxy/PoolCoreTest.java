package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.node.proxy.PoolCore.Decision;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The pool's rules as a pure core: scripts of events and the decisions they must produce. */
class PoolCoreTest {
    /**
     * A script: "a" acquire (request id = running number), "c:NAME:MAX" the pending connect
     * completes as NAME with server MAX_CONCURRENT_STREAMS = MAX, "f" connect fails, "r:NAME" a
     * stream on NAME ends, "g:NAME" GOAWAY on NAME. The result trace lists each decision: "use NAME",
     * "connect", "wait", "served [ids] again=BOOL", "failed [ids]".
     */
    static List<String> run(int perConn, String... script) {
        PoolCore<String, String, Integer> core = new PoolCore<>(perConn);
        List<String> trace = new ArrayList<>();
        int id = 0;
        for (String step : script) {
            String[] p = step.split(":");
            switch (p[0]) {
                case "a" -> {
                    Decision<String> d = core.acquire("k", id++);
                    trace.add(switch (d) {
                        case Decision.Use<String> u -> "use " + u.connection();
                        case Decision.Connect<String> c -> "connect";
                        case Decision.Wait<String> w -> "wait";
                    });
                }
                case "c" -> {
                    var r = core.connected("k", p[1], Long.parseLong(p[2]), 0);
                    trace.add("served " + r.served() + " again=" + r.connectAgain());
                }
                case "f" -> trace.add("failed " + core.connectFailed("k"));
                case "r" -> core.release("k", p[1], 0);
                case "g" -> core.goAway("k", p[1]);
                default -> throw new IllegalArgumentException(step);
            }
        }
        return trace;
    }

    static Stream<Arguments> scripts() {
        return Stream.of(
                Arguments.of("first request connects, others wait for that one connect", 100,
                        new String[]{"a", "a", "a", "c:A:200"},
                        List.of("connect", "wait", "wait", "served [0, 1, 2] again=false")),
                Arguments.of("streams reuse the connection", 100, new String[]{"a", "c:A:200", "a", "a"},
                        List.of("connect", "served [0] again=false", "use A", "use A")),
                Arguments.of("second connection only when the first is full", 2,
                        new String[]{"a", "c:A:200", "a", "a", "c:B:200", "a"},
                        List.of("connect", "served [0] again=false", "use A", "connect", "served [2] again=false",
                                "use B")),
                Arguments.of("server MAX_CONCURRENT_STREAMS below ours bounds the connection", 100,
                        new String[]{"a", "a", "a", "c:A:2", "c:B:2"},
                        List.of("connect", "wait", "wait", "served [0, 1] again=true", "served [2] again=false")),
                Arguments.of("our limit below the server's bounds it", 1, new String[]{"a", "c:A:200", "a"},
                        List.of("connect", "served [0] again=false", "connect")),
                Arguments.of("a released slot is reused before connecting", 1,
                        new String[]{"a", "c:A:200", "r:A", "a"},
                        List.of("connect", "served [0] again=false", "use A")),
                Arguments.of("GOAWAY: no new streams there, a new connection instead", 100,
                        new String[]{"a", "c:A:200", "g:A", "a", "c:B:200", "a"},
                        List.of("connect", "served [0] again=false", "connect", "served [1] again=false", "use B")),
                Arguments.of("failed connect fails every waiter; next request connects again", 100,
                        new String[]{"a", "a", "f", "a"}, List.of("connect", "wait", "failed [0, 1]", "connect")));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scripts")
    void follows(String name, int perConn, String[] script, List<String> expected) {
        assertThat(run(perConn, script)).isEqualTo(expected);
    }

    @Test
    void idleConnectionsAreReleasedAfterTheTimeoutOnly() {
        PoolCore<String, String, Integer> core = new PoolCore<>(100);
        core.acquire("k", 1);
        core.connected("k", "A", 200, 0);
        assertThat(core.idle(1_000, 500)).isEmpty(); // a stream is open
        core.release("k", "A", 2_000);
        assertThat(core.idle(2_400, 500)).isEmpty(); // idle for 400 < 500
        assertThat(core.idle(2_500, 500)).containsExactly("A");
        assertThat(core.connections()).isZero();
    }

    @Test
    void goingAwayConnectionIsReleasedWhenItsLastStreamEnds() {
        PoolCore<String, String, Integer> core = new PoolCore<>(100);
        core.acquire("k", 1);
        core.connected("k", "A", 200, 0);
        assertThat(core.goAway("k", "A")).isFalse();
        core.release("k", "A", 10);
        assertThat(core.idle(11, Long.MAX_VALUE)).containsExactly("A");
    }

    @Test
    void thousandRequestsNeedTenConnections() {
        PoolCore<String, String, Integer> core = new PoolCore<>(100);
        int connects = 0;
        List<Integer> pending = new ArrayList<>();
        for (int i = 0; i < 1000; i++) {
            if (core.acquire("k", i) instanceof Decision.Connect<String>) {
                connects++;
            }
        }
        // Connections complete one at a time, each serving what waits, each triggering the next.
        boolean again = true;
        int n = 0;
        while (again) {
            var r = core.connected("k", "C" + n++, 200, 0);
            pending.addAll(r.served());
            again = r.connectAgain();
        }
        assertThat(connects).isEqualTo(1);
        assertThat(core.connections()).isEqualTo(10);
        assertThat(pending).hasSize(1000);
    }
}
