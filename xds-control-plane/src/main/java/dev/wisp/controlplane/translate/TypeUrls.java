package dev.wisp.controlplane.translate;

import java.util.List;

/** The workload discovery type URLs ({@code wisp/workload.proto}), in the order agents subscribe. */
public final class TypeUrls {
    public static final String WORKLOAD = "type.wisp.dev/wisp.workload.v1.Workload";
    public static final String SERVICE = "type.wisp.dev/wisp.workload.v1.Service";
    public static final String AUTHORIZATION = "type.wisp.dev/wisp.workload.v1.Authorization";
    public static final String NODE = "type.wisp.dev/wisp.workload.v1.Node";
    public static final List<String> ALL = List.of(NODE, SERVICE, WORKLOAD, AUTHORIZATION);

    private TypeUrls() {}
}
