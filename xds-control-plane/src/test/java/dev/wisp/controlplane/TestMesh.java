package dev.wisp.controlplane;

import dev.wisp.testing.ConfigYaml;

/** A small mesh for tests: two nodes, a pod on each, one service. */
public final class TestMesh {
    public static final String YAML = ConfigYaml.documents(ConfigYaml.node("node-a", "192.168.0.1"),
            ConfigYaml.node("node-b", "192.168.0.2"),
            ConfigYaml.pod("web-1", "shop", "app: web, version: v2", "node-a", "web", "10.1.1.5"),
            ConfigYaml.pod("db-1", "data", "app: db", "node-b", "db", "10.1.2.7"), """
                    apiVersion: v1
                    kind: Service
                    metadata: {name: web, namespace: shop}
                    spec: {selector: {app: web}, clusterIP: 10.96.0.10, ports: [{port: 80, targetPort: 8080}]}
                    """);

    private TestMesh() {}
}
