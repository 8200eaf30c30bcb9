package dev.wisp.spiffe;

import static java.util.Objects.requireNonNull;

import java.nio.charset.StandardCharsets;
import java.util.Optional;

/**
 * A SPIFFE ID, {@code spiffe://<trust-domain><path>}, validated per the SPIFFE ID specification:
 * lower-case scheme {@code spiffe}, a trust domain of {@code [a-z0-9._-]} only (no port, no user
 * info), a path of non-empty segments of {@code [a-zA-Z0-9._-]} that are neither {@code .} nor
 * {@code ..}, no percent-encoding, query or fragment, at most 2048 bytes in all.
 *
 * <p>Kubernetes workload identities have the path {@code /ns/<namespace>/sa/<service-account>};
 * {@link #namespace()} and {@link #serviceAccount()} read them back.
 */
public final class SpiffeId {
    static final String SCHEME = "spiffe://";
    private static final int MAX_LENGTH = 2048;
    private static final int MAX_TRUST_DOMAIN_LENGTH = 255;

    private final String trustDomain;
    private final String path;

    private SpiffeId(String trustDomain, String path) {
        this.trustDomain = trustDomain;
        this.path = path;
    }

    /** Parses and validates {@code uri}; throws {@link InvalidSpiffeIdException} naming the problem. */
    public static SpiffeId parse(String uri) {
        requireNonNull(uri, "uri");
        if (uri.isEmpty()) {
            throw new InvalidSpiffeIdException(uri, "it is empty");
        }
        if (uri.getBytes(StandardCharsets.UTF_8).length > MAX_LENGTH) {
            throw new InvalidSpiffeIdException(uri, "longer than " + MAX_LENGTH + " bytes");
        }
        if (!uri.startsWith(SCHEME)) {
            int colon = uri.indexOf(':');
            String scheme = colon < 0 ? "none" : "'" + uri.substring(0, colon) + "'";
            throw new InvalidSpiffeIdException(uri,
                    "the scheme must be 'spiffe://' (lower case), found " + scheme);
        }
        String rest = uri.substring(SCHEME.length());
        int slash = rest.indexOf('/');
        String td = slash < 0 ? rest : rest.substring(0, slash);
        String path = slash < 0 ? "" : rest.substring(slash);
        checkTrustDomain(uri, td);
        checkPath(uri, path);
        return new SpiffeId(td, path);
    }

    /** {@code spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>}, validated. */
    public static SpiffeId forServiceAccount(String trustDomain, String namespace, String serviceAccount) {
        requireNonNull(trustDomain, "trustDomain");
        requireNonNull(namespace, "namespace");
        requireNonNull(serviceAccount, "serviceAccount");
        String uri = SCHEME + trustDomain + "/ns/" + namespace + "/sa/" + serviceAccount;
        if (namespace.indexOf('/') >= 0 || serviceAccount.indexOf('/') >= 0) {
            throw new InvalidSpiffeIdException(uri,
                    "a namespace or service account must be one path segment, without '/'");
        }
        return parse(uri);
    }

    /** The ID of a trust domain itself, {@code spiffe://<trustDomain>} (no path). */
    public static SpiffeId forTrustDomain(String trustDomain) {
        return parse(SCHEME + requireTrustDomain(trustDomain));
    }

    /**
     * Validates a bare trust domain name (as given to {@code wisp ca init --trust-domain}) and
     * returns it; throws {@link InvalidSpiffeIdException} naming the problem.
     */
    public static String requireTrustDomain(String trustDomain) {
        requireNonNull(trustDomain, "trustDomain");
        checkTrustDomain(trustDomain, trustDomain);
        return trustDomain;
    }

    private static void checkTrustDomain(String input, String td) {
        if (td.isEmpty()) {
            throw new InvalidSpiffeIdException(input, "the trust domain is empty");
        }
        if (td.length() > MAX_TRUST_DOMAIN_LENGTH) {
            throw new InvalidSpiffeIdException(input,
                    "the trust domain is longer than " + MAX_TRUST_DOMAIN_LENGTH + " characters");
        }
        for (int i = 0; i < td.length(); i++) {
            char c = td.charAt(i);
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_')) {
                String why = switch (c) {
                    case ':' -> "a port is not allowed";
                    case '@' -> "user info is not allowed";
                    case '%' -> "percent-encoding is not allowed";
                    case '?', '#' -> "a query or fragment is not allowed";
                    default -> (c >= 'A' && c <= 'Z')
                            ? "upper case is not allowed"
                            : "only a-z, 0-9, '.', '-' and '_' are allowed";
                };
                throw new InvalidSpiffeIdException(input,
                        "the trust domain has character '" + c + "' at position " + i + ": " + why);
            }
        }
    }

    private static void checkPath(String input, String path) {
        if (path.isEmpty()) {
            return;
        }
        if (path.equals("/") || path.endsWith("/")) {
            throw new InvalidSpiffeIdException(input, "the path must not end with '/'");
        }
        int start = 1;
        while (start <= path.length()) {
            int end = path.indexOf('/', start);
            if (end < 0) {
                end = path.length();
            }
            String segment = path.substring(start, end);
            if (segment.isEmpty()) {
                throw new InvalidSpiffeIdException(input, "the path has an empty segment ('//')");
            }
            if (segment.equals(".") || segment.equals("..")) {
                throw new InvalidSpiffeIdException(input, "the path has a '" + segment + "' segment");
            }
            for (int i = 0; i < segment.length(); i++) {
                char c = segment.charAt(i);
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.'
                        || c == '-' || c == '_')) {
                    String why = switch (c) {
                        case '%' -> "percent-encoding is not allowed";
                        case '?', '#' -> "a query or fragment is not allowed";
                        default -> "only a-z, A-Z, 0-9, '.', '-' and '_' are allowed";
                    };
                    throw new InvalidSpiffeIdException(input,
                            "the path segment '" + segment + "' has character '" + c + "': " + why);
                }
            }
            start = end + 1;
        }
    }

    public String trustDomain() {
        return trustDomain;
    }

    /** The path, starting with {@code /}, or empty for a trust domain's own ID. */
    public String path() {
        return path;
    }

    /** The namespace when the path is exactly {@code /ns/<namespace>/sa/<service-account>}. */
    public Optional<String> namespace() {
        String[] parts = kubernetesParts();
        return parts == null ? Optional.empty() : Optional.of(parts[0]);
    }

    /** The service account when the path is exactly {@code /ns/<namespace>/sa/<service-account>}. */
    public Optional<String> serviceAccount() {
        String[] parts = kubernetesParts();
        return parts == null ? Optional.empty() : Optional.of(parts[1]);
    }

    private String[] kubernetesParts() {
        String[] segments = path.split("/", -1);
        if (segments.length == 5 && segments[1].equals("ns") && segments[3].equals("sa")) {
            return new String[]{segments[2], segments[4]};
        }
        return null;
    }

    /** The ID without its scheme, as Istio's authorization policies name principals. */
    public String principal() {
        return trustDomain + path;
    }

    /** The full URI, {@code spiffe://<trust-domain><path>}. */
    @Override
    public String toString() {
        return SCHEME + trustDomain + path;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SpiffeId other && trustDomain.equals(other.trustDomain) && path.equals(other.path);
    }

    @Override
    public int hashCode() {
        return 31 * trustDomain.hashCode() + path.hashCode();
    }
}
