package dev.wisp.node.rbac;

import java.util.List;

/**
 * The outcome of {@link Authorizer#authorize}.
 *
 * @param allowed whether the connection may proceed
 * @param reason why, naming the deciding policy (or the default) for the access log
 * @param dryRun what each {@code istio.io/dry-run} policy would have decided ("ns/name: would deny")
 */
public record Verdict(boolean allowed, String reason, List<String> dryRun) {
    public Verdict {
        dryRun = List.copyOf(dryRun);
    }
}
