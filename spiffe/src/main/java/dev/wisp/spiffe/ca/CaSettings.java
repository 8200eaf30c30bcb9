package dev.wisp.spiffe.ca;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.SpiffeId;
import java.time.Clock;
import java.time.Duration;

/**
 * How a {@link CertificateAuthority} signs: its trust domain, the default and maximum workload
 * certificate lifetime (24 h and 90 days unless set), who authorizes nodes, and the clock.
 */
public record CaSettings(String trustDomain, Duration defaultTtl, Duration maxTtl, NodeAuthorizer authorizer,
        Clock clock) {
    public static final Duration DEFAULT_TTL = Duration.ofHours(24);
    public static final Duration DEFAULT_MAX_TTL = Duration.ofDays(90);

    public CaSettings {
        SpiffeId.requireTrustDomain(trustDomain);
        requireNonNull(defaultTtl, "defaultTtl");
        requireNonNull(maxTtl, "maxTtl");
        requireNonNull(authorizer, "authorizer");
        requireNonNull(clock, "clock");
        if (defaultTtl.isNegative() || defaultTtl.isZero() || maxTtl.isNegative() || maxTtl.isZero()) {
            throw new IllegalArgumentException("certificate lifetimes must be positive");
        }
        if (defaultTtl.compareTo(maxTtl) > 0) {
            throw new IllegalArgumentException(
                    "the default lifetime " + defaultTtl + " exceeds the maximum lifetime " + maxTtl);
        }
    }

    /** Defaults: 24 h lifetime, 90 days maximum, the system clock. */
    public static CaSettings of(String trustDomain, NodeAuthorizer authorizer) {
        return new CaSettings(trustDomain, DEFAULT_TTL, DEFAULT_MAX_TTL, authorizer, Clock.systemUTC());
    }

    public CaSettings withMaxTtl(Duration maxTtl) {
        Duration def = defaultTtl.compareTo(maxTtl) > 0 ? maxTtl : defaultTtl;
        return new CaSettings(trustDomain, def, maxTtl, authorizer, clock);
    }

    public CaSettings withDefaultTtl(Duration defaultTtl) {
        return new CaSettings(trustDomain, defaultTtl, maxTtl, authorizer, clock);
    }

    public CaSettings withClock(Clock clock) {
        return new CaSettings(trustDomain, defaultTtl, maxTtl, authorizer, clock);
    }

    public CaSettings withAuthorizer(NodeAuthorizer authorizer) {
        return new CaSettings(trustDomain, defaultTtl, maxTtl, authorizer, clock);
    }
}
