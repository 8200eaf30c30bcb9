package dev.wisp.waypoint.authz;

import static org.assertj.core.api.Assertions.assertThat;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.ECDSASigner;
import com.nimbusds.jose.crypto.RSASSASigner;
import com.nimbusds.jose.jwk.Curve;
import com.nimbusds.jose.jwk.ECKey;
import com.nimbusds.jose.jwk.JWK;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jose.jwk.gen.ECKeyGenerator;
import com.nimbusds.jose.jwk.gen.RSAKeyGenerator;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import dev.wisp.waypoint.authz.JwtAuthenticator.Result;
import dev.wisp.waypoint.route.EnvoyRoutes;
import io.envoyproxy.envoy.config.core.v3.DataSource;
import io.envoyproxy.envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication;
import io.envoyproxy.envoy.extensions.filters.http.jwt_authn.v3.JwtHeader;
import io.envoyproxy.envoy.extensions.filters.http.jwt_authn.v3.JwtProvider;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Request authentication with tokens signed here (RS256 and ES256): a valid token gives
 * {@code iss/sub} and its claims; a forged signature, an expired token, another issuer or audience is
 * refused; no token passes unauthenticated.
 */
class JwtAuthenticatorTest {
    static final String ISSUER = "https://issuer.example";
    static final Instant NOW = Instant.parse("2026-12-06T12:00:00Z");
    static final RSAKey RSA = generate(() -> new RSAKeyGenerator(2048).keyID("rsa-1").generate());
    static final ECKey EC = generate(() -> new ECKeyGenerator(Curve.P_256).keyID("ec-1").generate());
    static final RSAKey FORGER = generate(() -> new RSAKeyGenerator(2048).keyID("rsa-1").generate());

    interface KeyMaker<K> {
        K make() throws JOSEException;
    }

    static <K> K generate(KeyMaker<K> k) {
        try {
            return k.make();
        } catch (JOSEException e) {
            throw new AssertionError(e);
        }
    }

    /** A token of {@code iss}/alice for audience {@code aud}, valid from an hour before NOW until {@code exp}. */
    static String token(JWK key, String iss, String aud, Instant exp) throws JOSEException {
        JWTClaimsSet claims = new JWTClaimsSet.Builder().issuer(iss).subject("alice").audience(aud)
                .notBeforeTime(Date.from(NOW.minusSeconds(3600))).expirationTime(Date.from(exp))
                .claim("groups", List.of("dev", "admins")).claim("org", Map.of("team", "payments")).build();
        boolean rsa = key instanceof RSAKey;
        SignedJWT jwt = new SignedJWT(new JWSHeader.Builder(rsa ? JWSAlgorithm.RS256 : JWSAlgorithm.ES256)
                .keyID(key.getKeyID()).build(), claims);
        jwt.sign(rsa ? new RSASSASigner((RSAKey) key) : new ECDSASigner((ECKey) key));
        return jwt.serialize();
    }

    static String valid(JWK key) throws JOSEException {
        return token(key, ISSUER, "shop", NOW.plusSeconds(3600));
    }

    static JwtAuthentication config(DataSource keys) {
        return JwtAuthentication.newBuilder().putProviders("shop/jwt[0]", JwtProvider.newBuilder().setIssuer(ISSUER)
                .addAudiences("shop").setLocalJwks(keys)
                .addFromHeaders(JwtHeader.newBuilder().setName("authorization").setValuePrefix("Bearer "))
                .addFromParams("access_token").build()).build();
    }

    static final JwtAuthentication INLINE = config(DataSource.newBuilder().setInlineString(
            new JWKSet(List.of(RSA.toPublicJWK(), EC.toPublicJWK())).toString()).build());

    static EnvoyRoutes.Request bearer(String token) {
        return new EnvoyRoutes.Request("GET", "/", "", Map.of("authorization", List.of("Bearer " + token)));
    }

    @Test
    void rs256TokenGivesItsPrincipalAndClaims() throws Exception {
        Result r = JwtAuthenticator.authenticate(INLINE, bearer(valid(RSA)), NOW);
        assertThat(r).isInstanceOf(Result.Verified.class);
        var authn = ((Result.Verified) r).authn();
        assertThat(authn.get(List.of("request.auth.principal"))).containsExactly(ISSUER + "/alice");
        assertThat(authn.get(List.of("request.auth.audiences"))).containsExactly("shop");
        assertThat(authn.get(List.of("request.auth.claims", "groups"))).containsExactly("dev", "admins");
        assertThat(authn.get(List.of("request.auth.claims", "org", "team"))).containsExactly("payments");
        assertThat(((Result.Verified) r).provider()).isEqualTo("shop/jwt[0]");
    }

    @Test
    void es256TokenFromTheQueryParameter() throws Exception {
        Result r = JwtAuthenticator.authenticate(INLINE, new EnvoyRoutes.Request("GET", "/", "x=1&access_token="
                + valid(EC), Map.of()), NOW);
        assertThat(r).isInstanceOfSatisfying(Result.Verified.class, v -> assertThat(v.authn().get(List.of(
                "request.auth.principal"))).containsExactly(ISSUER + "/alice"));
    }

    @Test
    void forgedSignatureIsRefused() throws Exception {
        assertThat(JwtAuthenticator.authenticate(INLINE, bearer(valid(FORGER)), NOW))
                .isEqualTo(new Result.Rejected("Jwt verification fails"));
    }

    @Test
    void tamperedPayloadIsRefused() throws Exception {
        String[] parts = valid(RSA).split("\\.");
        String other = token(FORGER, ISSUER, "shop", NOW.plusSeconds(7200)).split("\\.")[1];
        assertThat(JwtAuthenticator.authenticate(INLINE, bearer(parts[0] + "." + other + "." + parts[2]), NOW))
                .isEqualTo(new Result.Rejected("Jwt verification fails"));
    }

    @Test
    void expiredTokenIsRefused() throws Exception {
        assertThat(JwtAuthenticator.authenticate(INLINE, bearer(token(RSA, ISSUER, "shop", NOW.minusSeconds(61))),
                NOW)).isEqualTo(new Result.Rejected("Jwt is expired"));
    }

    @Test
    void otherIssuerIsRefused() throws Exception {
        assertThat(JwtAuthenticator.authenticate(INLINE, bearer(token(RSA, "https://evil.example", "shop",
                NOW.plusSeconds(60))), NOW)).isEqualTo(new Result.Rejected("Jwt issuer is not configured"));
    }

    @Test
    void otherAudienceIsRefused() throws Exception {
        assertThat(JwtAuthenticator.authenticate(INLINE, bearer(token(EC, ISSUER, "billing", NOW.plusSeconds(60))),
                NOW)).isEqualTo(new Result.Rejected("Audiences in Jwt are not allowed"));
    }

    @Test
    void garbageIsRefused() {
        assertThat(JwtAuthenticator.authenticate(INLINE, bearer("not-a-jwt"), NOW))
                .isEqualTo(new Result.Rejected("Jwt is not in the form of Header.Payload.Signature"));
    }

    @Test
    void noTokenPassesUnauthenticated() {
        assertThat(JwtAuthenticator.authenticate(INLINE, new EnvoyRoutes.Request("GET", "/", "", Map.of(
                "authorization", List.of("Basic YTpi"))), NOW)).isEqualTo(new Result.None());
    }

    @Test
    void keysFromAFileAreReadWhenATokenComes(@TempDir Path dir) throws Exception {
        Path jwks = dir.resolve("jwks.json");
        JwtAuthentication fromFile = config(DataSource.newBuilder().setFilename(jwks.toString()).build());
        Files.writeString(jwks, new JWKSet(EC.toPublicJWK()).toString());
        assertThat(JwtAuthenticator.authenticate(fromFile, bearer(valid(RSA)), NOW))
                .isEqualTo(new Result.Rejected("Jwt verification fails"));
        Files.writeString(jwks, new JWKSet(RSA.toPublicJWK()).toString());
        assertThat(JwtAuthenticator.authenticate(fromFile, bearer(valid(RSA)), NOW))
                .isInstanceOf(Result.Verified.class);
    }
}
