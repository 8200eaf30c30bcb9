package dev.wisp.controlplane.kubernetes;

import static java.util.Objects.requireNonNull;

import dev.wisp.controlplane.xds.NodeAuthenticator.Authenticated;
import dev.wisp.controlplane.xds.NodeAuthenticator.Refused;
import dev.wisp.controlplane.xds.NodeAuthenticator.Result;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewStatus;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The pure decisions on an agent's service-account token: what the token's own claims already
 * refuse, what the API server's TokenReview answer says (authenticated, for our audience, the
 * agents' service account, bound to a pod), and which node that pod runs on according to the
 * control plane's informer, never according to the token alone. No I/O; {@link AgentTokens} is
 * the shell around it.
 */
final class AgentTokenChecks {
    /** The extras the API server adds for a token bound to a pod (Kubernetes 1.30+ adds the node). */
    static final String POD_NAME = "authentication.kubernetes.io/pod-name";
    static final String POD_UID = "authentication.kubernetes.io/pod-uid";
    static final String NODE_NAME = "authentication.kubernetes.io/node-name";

    /**
     * Who the agents are and what their tokens must be for.
     *
     * @param audience the audience of the agents' projected tokens (the chart's
     *            {@code controlPlane.tokenAudience})
     * @param namespace the namespace of the agents' ServiceAccount
     * @param serviceAccount the agents' ServiceAccount
     */
    record Expected(String audience, String namespace, String serviceAccount) {
        Expected {
            requireNonNull(audience, "audience");
            requireNonNull(namespace, "namespace");
            requireNonNull(serviceAccount, "serviceAccount");
        }

        String username() {
            return "system:serviceaccount:" + namespace + ":" + serviceAccount;
        }

        String account() {
            return namespace + "/" + serviceAccount;
        }
    }

    /** What a TokenReview established; cached for the token's lifetime. */
    sealed interface Review permits BoundPod, NotAgent {}

    /** The token is the agents' service account's, bound to this pod. */
    record BoundPod(String namespace, String name, String uid, Optional<String> nodeClaim) implements Review {}

    /** The token is not an agent's, for the reason given. */
    record NotAgent(Refused refused) implements Review {}

    private AgentTokenChecks() {}

    /** A refusal the token's unverified claims already justify (no TokenReview needed), or empty. */
    static Optional<Refused> precheck(Optional<TokenClaims> claims, Expected expected, Instant now) {
        if (claims.isEmpty()) {
            return Optional.of(new Refused("the credential is not a service-account token (a JWT): give the agent "
                    + "its projected token with --service-account-token (the chart mounts it at "
                    + "/var/run/secrets/wisp/token)"));
        }
        TokenClaims c = claims.get();
        if (!c.audiences().contains(expected.audience())) {
            return Optional.of(new Refused("the service-account token is for audience " + c.audiences()
                    + ", the control plane accepts '" + expected.audience() + "': set the projected token's audience "
                    + "(chart: controlPlane.tokenAudience) or the control plane's --token-audience"));
        }
        if (c.expiry().isPresent() && !c.expiry().get().isAfter(now)) {
            return Optional.of(new Refused("the service-account token expired at " + c.expiry().get()
                    + ": is the kubelet refreshing the agent's projected token volume?"));
        }
        return Optional.empty();
    }

    /** The pod the TokenReview's answer binds the token to, or the refusal that names what to check. */
    static Review review(TokenReviewStatus status, Expected expected) {
        if (status == null || !Boolean.TRUE.equals(status.getAuthenticated())) {
            String error = status == null || status.getError() == null || status.getError().isBlank()
                    ? ""
                    : " (" + status.getError() + ")";
            return new NotAgent(new Refused("the API server did not authenticate the service-account token" + error
                    + ": is it the agent pod's current projected token, for audience '" + expected.audience() + "'?"));
        }
        List<String> audiences = status.getAudiences() == null ? List.of() : status.getAudiences();
        if (!audiences.contains(expected.audience())) {
            return new NotAgent(
                    new Refused("the API server authenticated the token for audiences " + audiences + ", not '"
                            + expected.audience()
                            + "': set the projected token's audience (chart: controlPlane.tokenAudience)"));
        }
        String user = status.getUser() == null || status.getUser().getUsername() == null
                ? ""
                : status.getUser().getUsername();
        if (!user.equals(expected.username())) {
            return new NotAgent(new Refused("the token belongs to '" + user + "', not to the agents' service account "
                    + expected.account() + ": run the agent DaemonSet with serviceAccountName "
                    + expected.serviceAccount() + " in " + expected.namespace()
                    + ", or start the control plane with --agent-service-account for the account the agents use"));
        }
        Map<String, List<String>> extra = status.getUser().getExtra() == null ? Map.of() : status.getUser().getExtra();
        Optional<String> pod = single(extra, POD_NAME);
        Optional<String> uid = single(extra, POD_UID);
        if (pod.isEmpty() || uid.isEmpty()) {
            return new NotAgent(new Refused("the token of " + expected.account()
                    + " is not bound to a pod: give the agent a "
                    + "projected service-account token (a serviceAccountToken volume), not a legacy Secret token"));
        }
        return new BoundPod(expected.namespace(), pod.get(), uid.get(), single(extra, NODE_NAME));
    }

    /**
     * The node the token speaks for: that of the bound pod as the control plane's informer sees it
     * ({@code pod} empty: not in its view). A node named by the token's extras must agree with it.
     */
    static Result node(BoundPod bound, Optional<Pod> pod) {
        String name = bound.namespace() + "/" + bound.name();
        if (pod.isEmpty()) {
            return new Refused("the token's pod " + name + " is not in the control plane's view of the cluster "
                    + "(deleted, or not listed yet: may the control plane list pods?)");
        }
        Pod p = pod.get();
        String uid = p.getMetadata() == null ? null : p.getMetadata().getUid();
        if (!bound.uid().equals(uid)) {
            return new Refused(
                    "the token is bound to pod " + name + " with uid " + bound.uid() + ", but that pod is now "
                            + uid + ": the token belongs to a pod that was replaced");
        }
        String node = p.getSpec() == null ? null : p.getSpec().getNodeName();
        if (node == null || node.isEmpty()) {
            return new Refused("the token's pod " + name + " is not scheduled on any node");
        }
        if (bound.nodeClaim().isPresent() && !bound.nodeClaim().get().equals(node)) {
            return new Refused("the token names node '" + bound.nodeClaim().get() + "' but its pod " + name
                    + " runs on node '" + node + "'");
        }
        return new Authenticated(node);
    }

    private static Optional<String> single(Map<String, List<String>> extra, String key) {
        List<String> values = extra.get(key);
        return values == null || values.size() != 1 || values.getFirst() == null || values.getFirst().isEmpty()
                ? Optional.empty()
                : Optional.of(values.getFirst());
    }
}
