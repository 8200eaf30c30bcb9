package dev.wisp.local;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Which Gateways of the config directory the local mesh runs a waypoint for. */
class MeshWaypointsTest {
    @TempDir
    Path dir;

    static String gateway(String name, String namespace, String cls, String listener) {
        return """
                apiVersion: gateway.networking.k8s.io/v1
                kind: Gateway
                metadata: {name: %s, namespace: %s}
                spec:
                  gatewayClassName: %s
                  listeners: [%s]
                """.formatted(name, namespace, cls, listener);
    }

    static final String MESH = "{name: mesh, port: 15008, protocol: HBONE}";

    @Test
    void aWaypointClassWithTheMeshListenerDeclaresAWaypoint() throws Exception {
        Files.writeString(dir.resolve("a.yaml"), gateway("waypoint", "default", "wisp-waypoint", MESH) + "---\n"
                + gateway("istio-wp", "shop", "istio-waypoint", MESH) + "---\n"
                + gateway("ingress", "default", "nginx", MESH) + "---\n"
                + gateway("http-only", "default", "wisp-waypoint", "{name: http, port: 80, protocol: HTTP}")
                + "---\n" + gateway("wrong-port", "default", "wisp-waypoint",
                        "{name: mesh, port: 15009, protocol: HBONE}"));
        assertThat(MeshWaypoints.gateways(dir, "wisp-cluster-x.yaml")).containsOnlyKeys("default/waypoint",
                "shop/istio-wp").containsEntry("shop/istio-wp", new MeshWaypoints.Gateway("shop", "istio-wp"));
    }

    @Test
    void theGeneratedFileHiddenFilesAndUnreadableFilesAreSkipped() throws Exception {
        Files.writeString(dir.resolve("wisp-cluster-x.yaml"), gateway("gen", "default", "wisp-waypoint", MESH));
        Files.writeString(dir.resolve(".tmp.yaml"), gateway("hidden", "default", "wisp-waypoint", MESH));
        Files.writeString(dir.resolve("broken.yaml"), "kind: Gateway\n  : [unclosed");
        Files.writeString(dir.resolve("notes.txt"), gateway("text", "default", "wisp-waypoint", MESH));
        Files.writeString(dir.resolve("b.yaml"), gateway("kept", "other", "wisp-waypoint", MESH));
        assertThat(MeshWaypoints.gateways(dir, "wisp-cluster-x.yaml")).containsOnlyKeys("other/kept");
    }

    @Test
    void aGatewayWithoutANamespaceIsInDefault() throws Exception {
        Files.writeString(dir.resolve("c.yaml"), gateway("waypoint", "default", "wisp-waypoint", MESH).replace(
                ", namespace: default", ""));
        assertThat(MeshWaypoints.gateways(dir, "g.yaml")).containsOnlyKeys("default/waypoint");
    }

    @Test
    void theWaypointsJvmOptionsGoAfterTheMeshsOwnAndBeforeTheClassPath() {
        List<String> mesh = List.of("java", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp", "a.jar", "dev.wisp.cli.Wisp");
        assertThat(MeshWaypoints.withJvmOptions(mesh, " -XX:TieredStopAtLevel=4  -Xmx512m ")).containsExactly("java",
                "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:TieredStopAtLevel=4", "-Xmx512m", "-cp", "a.jar",
                "dev.wisp.cli.Wisp");
        assertThat(MeshWaypoints.withJvmOptions(mesh, "")).isEqualTo(mesh);
    }
}
