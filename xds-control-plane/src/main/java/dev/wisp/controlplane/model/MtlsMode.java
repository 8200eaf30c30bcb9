package dev.wisp.controlplane.model;

/** PeerAuthentication's mTLS modes; {@code UNSET} inherits from the enclosing scope. */
public enum MtlsMode {
    UNSET, DISABLE, PERMISSIVE, STRICT
}
