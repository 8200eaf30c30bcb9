package dev.wisp.node.capture;

import dev.wisp.bpf.capture.PodRef;

/**
 * What the agent runs for each pod capture enrolls on this node (the pod's Workload API socket, its DNS
 * listener, its transparent reply path): told of each pod enrolled and each pod that left.
 */
public interface PodFollower {
    /** The pod was enrolled, or enrolled again with changed details. */
    void podAdded(PodRef pod);

    /** Pod {@code uid} left the node: what was set up for it goes. */
    void podRemoved(String uid);
}
