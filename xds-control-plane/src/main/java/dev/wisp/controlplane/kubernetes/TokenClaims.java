package dev.wisp.controlplane.kubernetes;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Optional;

/**
 * The claims of a service-account token (a JWT) read <em>without</em> verifying its signature:
 * only ever used to refuse early (a token for another audience, an expired one: no TokenReview
 * needed) and to bound how long a TokenReview's positive answer is cached. Nothing is granted on
 * these claims; the API server's TokenReview decides.
 *
 * @param audiences the {@code aud} claim (a string or a list)
 * @param expiry the {@code exp} claim, when present
 */
record TokenClaims(List<String> audiences, Optional<Instant> expiry) {
    /** Longer than any service-account token the API server issues. */
    static final int MAX_TOKEN_CHARS = 8192;
    private static final ObjectMapper JSON = new ObjectMapper();

    TokenClaims {
        audiences = List.copyOf(audiences);
    }

    /** The claims, or empty when {@code token} is not a JWT (three base64url parts, a JSON payload). */
    static Optional<TokenClaims> parse(String token) {
        if (token.length() > MAX_TOKEN_CHARS) {
            return Optional.empty();
        }
        String[] parts = token.split("\\.", -1);
        if (parts.length != 3 || parts[1].isEmpty()) {
            return Optional.empty();
        }
        try {
            JsonNode payload = JSON.readTree(Base64.getUrlDecoder().decode(parts[1]));
            if (payload == null || !payload.isObject()) {
                return Optional.empty();
            }
            List<String> aud = new ArrayList<>();
            JsonNode a = payload.get("aud");
            if (a != null && a.isTextual()) {
                aud.add(a.asText());
            } else if (a != null && a.isArray()) {
                a.forEach(x -> aud.add(x.asText()));
            }
            JsonNode exp = payload.get("exp");
            return Optional.of(new TokenClaims(aud, exp != null && exp.canConvertToLong()
                    ? Optional.of(Instant.ofEpochSecond(exp.asLong()))
                    : Optional.empty()));
        } catch (IllegalArgumentException | java.io.IOException | java.time.DateTimeException e) {
            return Optional.empty();
        }
    }
}
