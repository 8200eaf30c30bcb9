package dev.wisp.waypoint.authz;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JWSVerifier;
import com.nimbusds.jose.crypto.ECDSAVerifier;
import com.nimbusds.jose.crypto.RSASSAVerifier;
import com.nimbusds.jose.jwk.ECKey;
import com.nimbusds.jose.jwk.JWK;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import dev.wisp.waypoint.route.EnvoyRoutes;
import io.envoyproxy.envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication;
import io.envoyproxy.envoy.extensions.filters.http.jwt_authn.v3.JwtHeader;
import io.envoyproxy.envoy.extensions.filters.http.jwt_authn.v3.JwtProvider;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.ParseException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * Istio's RequestAuthentication at the waypoint, from Envoy's jwt_authn configuration on the virtual
 * host (pure but for reading a key file): the request's token is looked for where the providers say
 * (a header with its value prefix, a query parameter). No token: the request goes on unauthenticated,
 * as in Istio (an ALLOW on {@code requestPrincipals} then refuses it). A token must be a JWS whose
 * issuer is a provider's, signed (RS256/384/512, PS*, ES256/384/512) by a key of that provider's JWKS
 * (by {@code kid} when the token names one), not expired nor not yet valid (60 s of clock skew, as
 * Envoy's default), and for one of the provider's audiences when it lists any; otherwise 401. A valid
 * token gives the request principal {@code <iss>/<sub>}, its audiences, presenter ({@code azp}) and
 * claims (strings, lists of strings; nested objects by path; other values as their JSON text).
 *
 * <p>Keys: inline ({@code local_jwks.inline_string}) or a file ({@code local_jwks.filename}, read on
 * each token, so a rotated file applies at once). A remote JWKS is not fetched yet: its issuer's
 * tokens are refused, never accepted unverified.
 */
public final class JwtAuthenticator {
    private static final long SKEW_SECONDS = 60;

    private JwtAuthenticator() {}

    /** What the token says: none, verified (its {@code authn} metadata), or refused (401). */
    public sealed interface Result {
        record None() implements Result {}

        record Verified(String provider, Map<List<String>, List<String>> authn) implements Result {}

        record Rejected(String reason) implements Result {}
    }

    public static Result authenticate(JwtAuthentication config, EnvoyRoutes.Request http, Instant now) {
        Map<String, JwtProvider> providers = new TreeMap<>(config.getProvidersMap());
        String token = null;
        List<Map.Entry<String, JwtProvider>> located = new ArrayList<>();
        for (var e : providers.entrySet()) {
            Optional<String> t = token(e.getValue(), http);
            if (t.isPresent() && (token == null || token.equals(t.get()))) {
                token = t.get();
                located.add(e);
            }
        }
        if (token == null) {
            return new Result.None();
        }
        SignedJWT jwt;
        JWTClaimsSet claims;
        try {
            jwt = SignedJWT.parse(token);
            claims = jwt.getJWTClaimsSet();
        } catch (ParseException e) {
            return new Result.Rejected("Jwt is not in the form of Header.Payload.Signature");
        }
        String issuer = claims.getIssuer();
        String reason = "Jwt issuer is not configured";
        for (var e : located) {
            if (!e.getValue().getIssuer().equals(issuer)) {
                continue;
            }
            Optional<String> refusal = check(e.getValue(), jwt, claims, now);
            if (refusal.isEmpty()) {
                return new Result.Verified(e.getKey(), authn(claims));
            }
            reason = refusal.get();
        }
        return new Result.Rejected(reason);
    }

    private static Optional<String> token(JwtProvider p, EnvoyRoutes.Request http) {
        for (JwtHeader h : p.getFromHeadersList()) {
            Optional<String> v = http.header(h.getName().toLowerCase(java.util.Locale.ROOT));
            if (v.isPresent() && v.get().startsWith(h.getValuePrefix())) {
                return Optional.of(v.get().substring(h.getValuePrefix().length()).trim());
            }
        }
        for (String name : p.getFromParamsList()) {
            for (String part : http.query().split("&")) {
                if (part.startsWith(name + "=")) {
                    return Optional.of(java.net.URLDecoder.decode(part.substring(name.length() + 1),
                            java.nio.charset.StandardCharsets.UTF_8));
                }
            }
        }
        return Optional.empty();
    }

    /** Why {@code jwt} is not valid for provider {@code p}, or empty when it is. */
    private static Optional<String> check(JwtProvider p, SignedJWT jwt, JWTClaimsSet claims, Instant now) {
        if (!verified(p, jwt)) {
            return Optional.of(p.hasRemoteJwks()
                    ? "Jwks at " + p.getRemoteJwks().getHttpUri().getUri() + " are not fetched by the waypoint yet"
                    : "Jwt verification fails");
        }
        if (claims.getExpirationTime() != null
                && now.isAfter(claims.getExpirationTime().toInstant().plusSeconds(SKEW_SECONDS))) {
            return Optional.of("Jwt is expired");
        }
        if (claims.getNotBeforeTime() != null
                && now.plusSeconds(SKEW_SECONDS).isBefore(claims.getNotBeforeTime().toInstant())) {
            return Optional.of("Jwt not yet valid");
        }
        if (p.getAudiencesCount() > 0 && claims.getAudience().stream().noneMatch(p.getAudiencesList()::contains)) {
            return Optional.of("Audiences in Jwt are not allowed");
        }
        return Optional.empty();
    }

    private static boolean verified(JwtProvider p, SignedJWT jwt) {
        JWKSet keys;
        try {
            keys = switch (p.getLocalJwks().getSpecifierCase()) {
                case INLINE_STRING -> JWKSet.parse(p.getLocalJwks().getInlineString());
                case FILENAME -> JWKSet.parse(Files.readString(Path.of(p.getLocalJwks().getFilename())));
                default -> null;
            };
        } catch (ParseException | IOException e) {
            return false;
        }
        if (keys == null) {
            return false;
        }
        String kid = jwt.getHeader().getKeyID();
        for (JWK k : keys.getKeys()) {
            if (kid != null && !kid.equals(k.getKeyID())) {
                continue;
            }
            try {
                JWSVerifier v = switch (k) {
                    case RSAKey rsa -> new RSASSAVerifier(rsa);
                    case ECKey ec -> new ECDSAVerifier(ec);
                    default -> null;
                };
                if (v != null && v.supportedJWSAlgorithms().contains(jwt.getHeader().getAlgorithm())
                        && jwt.verify(v)) {
                    return true;
                }
            } catch (JOSEException | IllegalStateException e) {
                // a key of another curve or size: try the next
            }
        }
        return false;
    }

    /** The metadata a valid token gives, by path under {@code istio_authn}. */
    private static Map<List<String>, List<String>> authn(JWTClaimsSet c) {
        Map<List<String>, List<String>> out = new HashMap<>();
        out.put(List.of("request.auth.principal"), List.of(c.getIssuer() + "/" + c.getSubject()));
        out.put(List.of("request.auth.audiences"), List.copyOf(c.getAudience()));
        Object azp = c.getClaim("azp");
        if (azp instanceof String s) {
            out.put(List.of("request.auth.presenter"), List.of(s));
        }
        c.getClaims().forEach((k, v) -> claim(new ArrayList<>(List.of("request.auth.claims", k)), v, out));
        return out;
    }

    private static void claim(List<String> path, Object v, Map<List<String>, List<String>> out) {
        switch (v) {
            case Map<?, ?> m -> m.forEach((k, x) -> {
                List<String> p = new ArrayList<>(path);
                p.add(String.valueOf(k));
                claim(p, x, out);
            });
            case Collection<?> list -> out.put(List.copyOf(path), list.stream().map(JwtAuthenticator::text).toList());
            case java.util.Date d ->
                out.put(List.copyOf(path), List.of(String.valueOf(d.toInstant().getEpochSecond())));
            default -> out.put(List.copyOf(path), List.of(text(v)));
        }
    }

    private static String text(Object v) {
        return String.valueOf(v);
    }
}
