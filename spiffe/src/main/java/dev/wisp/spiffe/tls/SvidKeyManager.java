package dev.wisp.spiffe.tls;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.X509Svid;
import java.net.Socket;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedKeyManager;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Presents the SVID current at each handshake. A handshake asks for an alias first and for the
 * chain and key afterwards; the alias names one SVID (by serial), so a renewal between the two calls
 * cannot pair one certificate with another's key. The last few SVIDs stay resolvable for handshakes
 * in flight.
 */
final class SvidKeyManager extends X509ExtendedKeyManager {
    private static final Logger log = LoggerFactory.getLogger(SpiffeTls.class);
    private static final int REMEMBERED = 4;

    private final Supplier<X509Svid> svid;
    /** Alias to SVID for recent handshakes; guarded by its own monitor. */
    private final Map<String, X509Svid> recent = new LinkedHashMap<>(8, 0.75f, false) {
        private static final long serialVersionUID = 1L;

        @Override
        protected boolean removeEldestEntry(Map.Entry<String, X509Svid> eldest) {
            return size() > REMEMBERED;
        }
    };

    SvidKeyManager(Supplier<X509Svid> svid) {
        this.svid = requireNonNull(svid, "svid");
    }

    private String choose(String... keyTypes) {
        X509Svid current = svid.get();
        if (current == null) {
            log.warn("TLS: no SVID available to present; the handshake will fail");
            return null;
        }
        if (!matchesAny(current.privateKey().getAlgorithm(), keyTypes)) {
            return null;
        }
        String alias = "svid-" + current.leaf().getSerialNumber().toString(16);
        synchronized (recent) {
            recent.put(alias, current);
        }
        return alias;
    }

    private static boolean matchesAny(String keyAlgorithm, String... keyTypes) {
        if (keyTypes == null || keyTypes.length == 0) {
            return true;
        }
        for (String type : keyTypes) {
            if (type == null || type.equals(keyAlgorithm)
                    || (keyAlgorithm.equals("EC") && (type.startsWith("EC") || type.equals("ECDSA")))) {
                return true;
            }
        }
        return false;
    }

    private X509Svid lookup(String alias) {
        synchronized (recent) {
            return alias == null ? null : recent.get(alias);
        }
    }

    @Override
    public String chooseClientAlias(String[] keyTypes, Principal[] issuers, Socket socket) {
        return choose(keyTypes);
    }

    @Override
    public String chooseEngineClientAlias(String[] keyTypes, Principal[] issuers, SSLEngine engine) {
        return choose(keyTypes);
    }

    @Override
    public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
        return choose(keyType);
    }

    @Override
    public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
        return choose(keyType);
    }

    @Override
    public String[] getClientAliases(String keyType, Principal[] issuers) {
        String alias = choose(keyType);
        return alias == null ? null : new String[]{alias};
    }

    @Override
    public String[] getServerAliases(String keyType, Principal[] issuers) {
        return getClientAliases(keyType, issuers);
    }

    @Override
    public X509Certificate[] getCertificateChain(String alias) {
        X509Svid s = lookup(alias);
        return s == null ? null : s.chain().toArray(X509Certificate[]::new);
    }

    @Override
    public PrivateKey getPrivateKey(String alias) {
        X509Svid s = lookup(alias);
        return s == null ? null : s.privateKey();
    }
}
