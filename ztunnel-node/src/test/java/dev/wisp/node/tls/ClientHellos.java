package dev.wisp.node.tls;

import java.nio.ByteBuffer;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;

/** Real ClientHellos, as the JDK's TLS client writes them, for tests of what the server reads. */
public final class ClientHellos {
    private ClientHellos() {}

    /** The first TLS record a JDK client sends for {@code protocols} ("TLSv1.3"…) and ALPN {@code alpn} (none if empty). */
    public static byte[] record(String[] protocols, String... alpn) throws Exception {
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, new TrustManager[]{new X509TrustManager() {
            @Override
            public void checkClientTrusted(X509Certificate[] chain, String authType) {}

            @Override
            public void checkServerTrusted(X509Certificate[] chain, String authType) {}

            @Override
            public X509Certificate[] getAcceptedIssuers() {
                return new X509Certificate[0];
            }
        }}, null);
        SSLEngine engine = context.createSSLEngine("127.0.0.1", 15008);
        engine.setUseClientMode(true);
        engine.setEnabledProtocols(protocols);
        if (alpn.length > 0) {
            SSLParameters p = engine.getSSLParameters();
            p.setApplicationProtocols(alpn);
            engine.setSSLParameters(p);
        }
        ByteBuffer out = ByteBuffer.allocate(engine.getSession().getPacketBufferSize());
        engine.wrap(ByteBuffer.allocate(0), out);
        out.flip();
        byte[] bytes = new byte[out.remaining()];
        out.get(bytes);
        return bytes;
    }

    /** The ClientHello body (from {@code legacy_version}) inside a one-record {@link #record}. */
    public static byte[] body(byte[] record) {
        int length = ((record[6] & 0xff) << 16) | ((record[7] & 0xff) << 8) | (record[8] & 0xff);
        return Arrays.copyOfRange(record, 9, 9 + length);
    }
}
