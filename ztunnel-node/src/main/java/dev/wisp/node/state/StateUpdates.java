package dev.wisp.node.state;

import dev.wisp.api.workload.v1.Resource;
import java.util.List;
import java.util.Map;

/**
 * How the node agent's state is fed: the workload xDS client calls {@link #apply} once per
 * discovery response. The whole call applies atomically or not at all; a refusal becomes a NACK
 * whose message is the exception's.
 *
 * <p>Type URLs are {@link #WORKLOAD}, {@link #SERVICE}, {@link #AUTHORIZATION} and {@link #NODE};
 * resource names follow {@code wisp/workload.proto}.
 */
public interface StateUpdates {
    String WORKLOAD = "type.wisp.dev/wisp.workload.v1.Workload";
    String SERVICE = "type.wisp.dev/wisp.workload.v1.Service";
    String AUTHORIZATION = "type.wisp.dev/wisp.workload.v1.Authorization";
    String NODE = "type.wisp.dev/wisp.workload.v1.Node";

    /** Every type URL, in the order an agent subscribes to them. */
    List<String> TYPES = List.of(NODE, SERVICE, WORKLOAD, AUTHORIZATION);

    /**
     * Upserts {@code resources} (each of kind {@code typeUrl}) and removes {@code removed} names.
     *
     * @throws InvalidResourceException when any resource is malformed; nothing is applied then
     */
    void apply(String typeUrl, List<Resource> resources, List<String> removed) throws InvalidResourceException;

    /** Name → version of what is held for {@code typeUrl}: sent as initial versions on reconnect. */
    Map<String, String> versions(String typeUrl);
}
