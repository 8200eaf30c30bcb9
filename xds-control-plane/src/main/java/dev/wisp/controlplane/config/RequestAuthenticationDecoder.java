package dev.wisp.controlplane.config;

import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.model.RequestAuthentication;
import dev.wisp.controlplane.model.RequestAuthentication.JwtRule;
import dev.wisp.controlplane.model.TargetRef;
import java.net.URI;
import java.net.URISyntaxException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Decodes Istio's {@code security.istio.io/v1 RequestAuthentication} strictly: unknown fields,
 * a rule without an issuer, a key location that is not an http(s) or file URL or given twice are
 * errors naming the field. {@code targetRef(s)} attach it to a waypoint as for AuthorizationPolicy.
 */
final class RequestAuthenticationDecoder {
    private RequestAuthenticationDecoder() {}

    static RequestAuthentication requestAuthentication(Fields f, YNode doc, ObjectRef ref) {
        f.allowOnly(doc, "", "apiVersion", "kind", "metadata", "spec");
        YNode spec = f.child(doc, "spec");
        f.allowOnly(spec, "spec", "selector", "targetRef", "targetRefs", "jwtRules");
        List<TargetRef> targets = AuthorizationPolicyDecoder.targetRefs(f, spec);
        Map<String, String> selector = ConfigDecoder.selector(f, spec);
        List<JwtRule> rules = new ArrayList<>();
        f.each(spec, "jwtRules", "spec.jwtRules", (r, path) -> {
            f.allowOnly(r, path, "issuer", "audiences", "jwksUri", "jwks", "fromHeaders", "fromParams",
                    "forwardOriginalToken");
            String issuer = f.string(r, "issuer", path + ".issuer");
            if (issuer == null || issuer.isBlank()) {
                f.error(r, path + ".issuer", "required: the token's iss claim");
            }
            String jwks = f.string(r, "jwks", path + ".jwks");
            URI jwksUri = jwksUri(f, r, path + ".jwksUri");
            if (jwks != null && jwksUri != null) {
                f.error(f.child(r, "jwks"), path + ".jwks", "give the keys once: jwksUri or jwks, not both");
            }
            Map<String, String> headers = new LinkedHashMap<>();
            f.each(r, "fromHeaders", path + ".fromHeaders", (h, hPath) -> {
                f.allowOnly(h, hPath, "name", "prefix");
                String name = f.string(h, "name", hPath + ".name");
                if (name == null || !RouteDecoder.TOKEN.matcher(name).matches()) {
                    f.error(h, hPath + ".name", name == null ? "required" : "'" + name + "' is not a header name");
                    return;
                }
                String prefix = f.string(h, "prefix", hPath + ".prefix");
                headers.put(name.toLowerCase(Locale.ROOT), prefix == null ? "" : prefix);
            });
            String forward = f.string(r, "forwardOriginalToken", path + ".forwardOriginalToken");
            if (forward != null && !forward.equals("true") && !forward.equals("false")) {
                f.error(f.child(r, "forwardOriginalToken"), path + ".forwardOriginalToken", "'" + forward
                        + "' is not true or false");
            }
            rules.add(new JwtRule(issuer, List.copyOf(f.strings(r, "audiences", path + ".audiences")), jwksUri,
                    jwks, Map.copyOf(headers), List.copyOf(f.strings(r, "fromParams", path + ".fromParams")),
                    "true".equals(forward)));
        });
        return new RequestAuthentication(ref, selector, List.copyOf(rules), targets);
    }

    private static URI jwksUri(Fields f, YNode rule, String path) {
        String text = f.string(rule, "jwksUri", path);
        if (text == null) {
            return null;
        }
        try {
            URI uri = new URI(text);
            if (("https".equals(uri.getScheme()) || "http".equals(uri.getScheme())) && uri.getHost() != null) {
                return uri;
            }
            if ("file".equals(uri.getScheme()) && uri.getPath() != null && uri.getPath().startsWith("/")) {
                return uri;
            }
        } catch (URISyntaxException e) {
            // reported below with the field
        }
        f.error(f.child(rule, "jwksUri"), path, "'" + text + "' is not an http(s) URL such as "
                + "https://issuer.example/.well-known/jwks.json, or a file:///absolute/path");
        return null;
    }
}
