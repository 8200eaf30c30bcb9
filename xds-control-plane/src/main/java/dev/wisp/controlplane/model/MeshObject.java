package dev.wisp.controlplane.model;

/** A configuration object of the model; every kind names itself with an {@link ObjectRef}. */
public sealed interface MeshObject
        permits Pod, ServiceDef, NodeDef, AuthorizationPolicy, PeerAuthentication, RequestAuthentication,
        MeshConfigObject, Namespace,
        Gateway, HttpRoute, GrpcRoute, EndpointSlice, HttpFault, LocalRateLimit {
    ObjectRef ref();
}
