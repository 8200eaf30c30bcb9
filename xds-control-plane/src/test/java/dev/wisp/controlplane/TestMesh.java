package dev.wisp.controlplane;

/** A small mesh for tests: two nodes, a pod on each, one service. */
public final class TestMesh {
    public static final String YAML = """
            apiVersion: v1
            kind: Node
            metadata: {name: node-a}
            status: {addresses: [{type: InternalIP, address: 192.168.0.1}]}
            ---
            apiVersion: v1
            kind: Node
            metadata: {name: node-b}
            status: {addresses: [{type: InternalIP, address: 192.168.0.2}]}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: web-1, namespace: shop, labels: {app: web, version: v2}}
            spec: {nodeName: node-a, serviceAccountName: web}
            status: {podIP: 10.1.1.5}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: db-1, namespace: data, labels: {app: db}}
            spec: {nodeName: node-b, serviceAccountName: db}
            status: {podIP: 10.1.2.7}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web, namespace: shop}
            spec: {selector: {app: web}, clusterIP: 10.96.0.10, ports: [{port: 80, targetPort: 8080}]}
            """;

    private TestMesh() {}
}
