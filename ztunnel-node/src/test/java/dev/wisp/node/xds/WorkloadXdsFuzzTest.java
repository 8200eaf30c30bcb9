package dev.wisp.node.xds;

import static dev.wisp.node.Fixtures.node;
import static dev.wisp.node.Fixtures.res;
import static dev.wisp.node.Fixtures.workload;
import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.wisp.api.workload.v1.Action;
import dev.wisp.api.workload.v1.DeltaWorkloadResponse;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.api.workload.v1.Workload;
import dev.wisp.node.Fixtures;
import dev.wisp.node.state.InvalidResourceException;
import dev.wisp.node.state.Snapshot;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.testing.GrpcMessages;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Workload-xDS messages as the agent receives them: the bytes of a {@code DeltaWorkloadResponse}
 * (decoded as gRPC would), applied to a fresh {@link WorkloadIndex} after a known good state, as
 * {@link DeltaXdsClient} applies them. Whatever arrives, the index either takes it or refuses it
 * whole with {@link InvalidResourceException} (a NACK) — a runtime exception is a finding — and the
 * state it leaves answers the data path's questions (addresses, endpoints, policies) without failing.
 */
class WorkloadXdsFuzzTest {
    static List<Resource> good() {
        return List.of(res(workload("pod-a", "client", "n1", "127.0.0.4")),
                res(workload("pod-b", "server", "n2", "127.0.0.3")));
    }

    @FuzzTest(maxDuration = "10s")
    void anyResponseFromTheControlPlane(byte[] message) {
        GrpcMessages.decode(DeltaWorkloadResponse.parser(), message).ifPresent(WorkloadXdsFuzzTest::applyToAGoodState);
    }

    /** Applies {@code r} as the client would, after a known good state. */
    static void applyToAGoodState(DeltaWorkloadResponse r) {
        WorkloadIndex index = WorkloadIndex.create();
        try {
            index.apply(StateUpdates.NODE, List.of(node("n1", "127.0.0.1", 15008)), List.of());
            index.apply(StateUpdates.WORKLOAD, good(), List.of());
        } catch (InvalidResourceException e) {
            throw new AssertionError(e);
        }
        Snapshot before = index.snapshot();
        try {
            index.apply(r.getTypeUrl(), r.getResourcesList(), r.getRemovedResourcesList());
        } catch (InvalidResourceException refused) {
            assertThat(index.snapshot()).as("a refused update changes nothing").isSameAs(before);
        }
        Snapshot s = index.snapshot();
        for (Workload w : s.workloads()) {
            s.policiesFor(w);
            w.getAddressesList().forEach(a -> {
                if (a.size() == 4 || a.size() == 16) {
                    try {
                        s.workloadByAddress(java.net.InetAddress.getByAddress(a.toByteArray()));
                    } catch (java.net.UnknownHostException e) {
                        throw new AssertionError(e);
                    }
                }
            });
        }
        s.resources().getOrDefault(StateUpdates.SERVICE, java.util.Map.of()).keySet().forEach(s::endpoints);
    }

    /** Writes the seed corpus when {@code -Dwisp.fuzz.writeSeeds=DIR} is given (run once by hand). */
    @Test
    void seedsCanBeRegenerated() throws IOException {
        List<DeltaWorkloadResponse> seeds = List.of(
                DeltaWorkloadResponse.newBuilder().setTypeUrl(StateUpdates.WORKLOAD).addAllResources(good())
                        .addRemovedResources("pod-x").setNonce("1").build(),
                DeltaWorkloadResponse.newBuilder().setTypeUrl(StateUpdates.SERVICE)
                        .addResources(Fixtures.service("echo.default.svc", "127.0.0.50", 80, 8080)).setNonce("2")
                        .build(),
                DeltaWorkloadResponse.newBuilder().setTypeUrl(StateUpdates.AUTHORIZATION)
                        .addResources(Fixtures.sourceIpPolicy("deny", Action.DENY, "10.0.0.1"))
                        .addResources(Fixtures.principalPolicy("allow", Action.ALLOW, "cluster.local/ns/x/sa/*"))
                        .setNonce("3").build(),
                DeltaWorkloadResponse.newBuilder().setTypeUrl(StateUpdates.NODE)
                        .addResources(node("n2", "127.0.0.2", 15008)).setNonce("4").build());
        assertThat(seeds.getFirst().toByteArray().length).isGreaterThan(40);
        String dir = System.getProperty("wisp.fuzz.writeSeeds");
        if (dir != null) {
            Path d = Files.createDirectories(Path.of(dir));
            for (int i = 0; i < seeds.size(); i++) {
                Files.write(d.resolve("delta-" + i), seeds.get(i).toByteArray());
            }
        }
    }
}
