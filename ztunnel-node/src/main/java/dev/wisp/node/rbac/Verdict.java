package dev.wisp.node.rbac;

import static java.util.Objects.requireNonNull;

import java.util.List;

/**
 * The outcome of {@link Authorizer#authorize}.
 *
 * @param allowed whether the connection may proceed
 * @param policy the deciding policy as {@code ns/name}, empty when the default decided (no ALLOW
 *     policy in scope, or none matched)
 * @param reason why, naming the deciding policy (or the default) for the access log
 * @param dryRun what each {@code istio.io/dry-run} policy would have decided ("ns/name: would deny")
 */
public record Verdict(boolean allowed, String policy, String reason, List<String> dryRun) {
    public Verdict {
        requireNonNull(policy, "policy");
        requireNonNull(reason, "reason");
        dryRun = List.copyOf(dryRun);
    }
}
