package dev.wisp.controlplane.kubernetes;

import static java.util.Objects.requireNonNull;

import dev.wisp.controlplane.kubernetes.AgentTokenChecks.BoundPod;
import dev.wisp.controlplane.kubernetes.AgentTokenChecks.Expected;
import dev.wisp.controlplane.kubernetes.AgentTokenChecks.NotAgent;
import dev.wisp.controlplane.kubernetes.AgentTokenChecks.Review;
import dev.wisp.controlplane.xds.NodeAuthenticator;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.authentication.TokenReview;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BiFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Authenticates node agents on Kubernetes by their projected service-account tokens: the token's
 * own claims refuse early (not a JWT, another audience, expired), a TokenReview to the API server
 * (audience = the agents' audience) says whose token it is and which pod it is bound to, and the
 * node is that pod's {@code spec.nodeName} in the control plane's informer, checked at every call
 * (a deleted or replaced pod stops authenticating at once, whatever was cached).
 *
 * <p>Cache: a TokenReview's answer is kept, by the token's SHA-256, until the token expires (its
 * {@code exp}, at most {@link Settings#maxTtl}), a refusal for {@link Settings#refusalTtl}; at most
 * {@link Settings#maxEntries} tokens, the least recently used going first. Concurrent calls with
 * the same token wait for one TokenReview; at most {@link #CONCURRENT_REVIEWS} TokenReviews are in
 * flight, so a flood of requests is not a flood of TokenReviews. A TokenReview that fails (the API
 * server away, RBAC missing) refuses the call and is not cached.
 *
 * <p>Threads: called on gRPC's executor threads; the cache is guarded by its own monitor, the
 * in-flight reviews live in a concurrent map. Tokens are never logged.
 */
public final class AgentTokens implements NodeAuthenticator {
    private static final Logger log = LoggerFactory.getLogger(AgentTokens.class);
    static final int CONCURRENT_REVIEWS = 4;

    /**
     * Who the agents are and how long to remember answers.
     *
     * @param audience the audience of the agents' projected tokens, sent with each TokenReview
     * @param namespace the namespace of the agents' ServiceAccount
     * @param serviceAccount the agents' ServiceAccount
     */
    public record Settings(String audience, String namespace, String serviceAccount, int maxEntries,
            Duration refusalTtl, Duration maxTtl) {
        public Settings {
            requireNonNull(audience, "audience");
            requireNonNull(namespace, "namespace");
            requireNonNull(serviceAccount, "serviceAccount");
            requireNonNull(refusalTtl, "refusalTtl");
            requireNonNull(maxTtl, "maxTtl");
            if (audience.isBlank() || namespace.isBlank() || serviceAccount.isBlank()) {
                throw new IllegalArgumentException("the agents' token audience, namespace and service account must "
                        + "not be empty");
            }
            if (maxEntries < 1) {
                throw new IllegalArgumentException("maxEntries must be at least 1, not " + maxEntries);
            }
        }

        /** 10,000 tokens, refusals for 30 s, answers for at most 24 h. */
        public Settings(String audience, String namespace, String serviceAccount) {
            this(audience, namespace, serviceAccount, 10_000, Duration.ofSeconds(30), Duration.ofHours(24));
        }
    }

    private record Cached(Review review, Instant until) {}

    private final KubernetesClient client;
    private final Settings settings;
    private final Expected expected;
    private final BiFunction<String, String, Optional<Pod>> pods;
    private final InstantSource clock;
    /** Token digest → answer, in access order; guarded by itself. */
    private final LinkedHashMap<String, Cached> cache = new LinkedHashMap<>(16, 0.75f, true);
    private final Map<String, CompletableFuture<Review>> inFlight = new ConcurrentHashMap<>();
    private final Semaphore reviewing = new Semaphore(CONCURRENT_REVIEWS);
    private final AtomicLong reviews = new AtomicLong();

    AgentTokens(KubernetesClient client, Settings settings, BiFunction<String, String, Optional<Pod>> pods,
            InstantSource clock) {
        this.client = requireNonNull(client, "client");
        this.settings = requireNonNull(settings, "settings");
        this.pods = requireNonNull(pods, "pods");
        this.clock = requireNonNull(clock, "clock");
        this.expected = new Expected(settings.audience(), settings.namespace(), settings.serviceAccount());
    }

    /** Agents' tokens checked with {@code client}, their pods' nodes read from {@code source}'s informer. */
    public static AgentTokens create(KubernetesClient client, Settings settings, KubernetesConfigSource source) {
        requireNonNull(source, "source");
        return new AgentTokens(client, settings, source::pod, InstantSource.system());
    }

    @Override
    public Result authenticate(String credential) {
        if (credential == null || credential.isEmpty()) {
            return new Refused("empty credential: give the agent its projected token with --service-account-token");
        }
        Optional<TokenClaims> claims = TokenClaims.parse(credential);
        Optional<Refused> early = AgentTokenChecks.precheck(claims, expected, clock.instant());
        if (early.isPresent()) {
            return early.get();
        }
        return switch (reviewed(credential, claims.get())) {
            case NotAgent n -> n.refused();
            case BoundPod bound -> AgentTokenChecks.node(bound, pods.apply(bound.namespace(), bound.name()));
        };
    }

    /** The cached answer for {@code token}, or one TokenReview's (shared with concurrent callers). */
    private Review reviewed(String token, TokenClaims claims) {
        String key = NodeAuthenticator.digest(token);
        Review hit = cached(key);
        if (hit != null) {
            return hit;
        }
        CompletableFuture<Review> mine = new CompletableFuture<>();
        CompletableFuture<Review> running = inFlight.putIfAbsent(key, mine);
        if (running != null) {
            return running.join();
        }
        try {
            // Another caller may have finished between the lookup and putIfAbsent.
            Review r = cached(key);
            if (r == null) {
                r = ask(token);
                if (r != null) {
                    remember(key, r, claims);
                } else {
                    r = new NotAgent(new Refused("the control plane could not check the token with a TokenReview "
                            + "(see its log: may its ServiceAccount create tokenreviews?); retrying"));
                }
            }
            mine.complete(r);
            return r;
        } catch (RuntimeException e) {
            mine.completeExceptionally(e);
            throw e;
        } finally {
            inFlight.remove(key, mine);
        }
    }

    /** One TokenReview; null when it could not be made (not cached). */
    private Review ask(String token) {
        try {
            if (!reviewing.tryAcquire(10, TimeUnit.SECONDS)) {
                log.warn("{} TokenReviews already in flight for 10 s; refusing this agent call", CONCURRENT_REVIEWS);
                return null;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
        try {
            reviews.incrementAndGet();
            TokenReview answer = client.authentication().v1().tokenReviews().create(new TokenReviewBuilder()
                    .withNewSpec().withToken(token).withAudiences(List.of(settings.audience())).endSpec().build());
            return AgentTokenChecks.review(answer == null ? null : answer.getStatus(), expected);
        } catch (KubernetesClientException e) {
            log.warn("TokenReview failed ({}): is the API server reachable, and may the control plane's "
                    + "ServiceAccount create tokenreviews.authentication.k8s.io?", e.getMessage());
            return null;
        } finally {
            reviewing.release();
        }
    }

    private Review cached(String key) {
        synchronized (cache) {
            Cached c = cache.get(key);
            if (c == null) {
                return null;
            }
            if (!c.until().isAfter(clock.instant())) {
                cache.remove(key);
                return null;
            }
            return c.review();
        }
    }

    private void remember(String key, Review review, TokenClaims claims) {
        Instant now = clock.instant();
        Instant until = review instanceof BoundPod
                ? claims.expiry().filter(e -> e.isBefore(now.plus(settings.maxTtl())))
                        .orElse(now.plus(settings.maxTtl()))
                : now.plus(settings.refusalTtl());
        synchronized (cache) {
            cache.put(key, new Cached(review, until));
            if (cache.size() > settings.maxEntries()) {
                cache.remove(cache.keySet().iterator().next());
            }
        }
    }

    /** How many TokenReviews were sent: tests prove the cache with it. */
    long reviews() {
        return reviews.get();
    }
}
