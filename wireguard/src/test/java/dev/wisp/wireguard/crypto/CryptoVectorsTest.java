package dev.wisp.wireguard.crypto;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;

/** The primitives against their specifications' published vectors. */
class CryptoVectorsTest {
    private static final HexFormat HEX = HexFormat.of();
    private static final byte[] SUNSCREEN = ("Ladies and Gentlemen of the class of '99: If I could offer you only one tip"
            + " for the future, sunscreen would be it.").getBytes(StandardCharsets.US_ASCII);

    private static byte[] hex(String s) {
        return HEX.parseHex(s);
    }

    private static byte[] range(int from, int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (from + i);
        }
        return b;
    }

    /** X25519(scalar, u) = expected, all hex. */
    static void assertX25519(String scalar, String u, String expected) {
        assertThat(HEX.formatHex(X25519.dh(hex(scalar), hex(u)).orElseThrow())).isEqualTo(expected);
    }

    @Test
    void x25519Rfc7748Section5_2() {
        assertX25519("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
                "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
                "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
    }

    @Test
    void x25519Rfc7748Section5_2SecondVector() {
        assertX25519("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
                "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
                "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957");
    }

    @Test
    void x25519Rfc7748Section5_2Iterated() {
        // k = u = 9; then repeatedly k, u = X25519(k, u), k.
        byte[] k = new byte[32];
        k[0] = 9;
        byte[] u = k.clone();
        for (int i = 1; i <= 1000; i++) {
            byte[] r = X25519.dh(k, u).orElseThrow();
            u = k;
            k = r;
            if (i == 1) {
                assertThat(HEX.formatHex(k))
                        .isEqualTo("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079");
            }
        }
        assertThat(HEX.formatHex(k)).isEqualTo("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51");
    }

    @Test
    void x25519Rfc7748Section6_1() {
        byte[] alice = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        byte[] bob = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        assertThat(HEX.formatHex(X25519.publicKey(alice)))
                .isEqualTo("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        assertThat(HEX.formatHex(X25519.publicKey(bob)))
                .isEqualTo("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        String shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
        assertThat(HEX.formatHex(X25519.dh(alice, X25519.publicKey(bob)).orElseThrow())).isEqualTo(shared);
        assertThat(HEX.formatHex(X25519.dh(bob, X25519.publicKey(alice)).orElseThrow())).isEqualTo(shared);
    }

    @Test
    void x25519RejectsLowOrderPoints() {
        assertThat(X25519.dh(X25519.generatePrivateKey(), new byte[32])).isEmpty();
        byte[] one = new byte[32];
        one[0] = 1;
        assertThat(X25519.dh(X25519.generatePrivateKey(), one)).isEmpty();
    }

    /** RFC 8439 §2.8.2's key and AAD, which the XChaCha20 draft's appendix A.3.1 reuses. */
    private static final byte[] RFC_KEY = range(0x80, 32);
    private static final byte[] RFC_AAD = hex("50515253c0c1c2c3c4c5c6c7");

    @Test
    void chachaPolyRfc8439Section2_8_2() {
        byte[] out = ChaChaPoly.sealWithNonce(RFC_KEY, hex("070000004041424344454647"), SUNSCREEN, RFC_AAD);
        assertThat(HEX.formatHex(out)).isEqualTo("d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
                + "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58"
                + "fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116"
                + "1ae10b594f09e26a7e902ecbd0600691");
    }

    @Test
    void chachaPolyCounterNonceRoundTripsAndRejectsTampering() {
        byte[] key = range(1, 32);
        byte[] ct = ChaChaPoly.seal(key, 42, SUNSCREEN, new byte[0]);
        assertThat(ChaChaPoly.open(key, 42, ct, new byte[0]))
                .hasValueSatisfying(p -> assertThat(p).isEqualTo(SUNSCREEN));
        assertThat(ChaChaPoly.open(key, 43, ct, new byte[0])).isEmpty();
        ct[3] ^= 1;
        assertThat(ChaChaPoly.open(key, 42, ct, new byte[0])).isEmpty();
        // The counter is little-endian after four zero bytes.
        byte[] nonce = hex("000000002a00000000000000");
        assertThat(ChaChaPoly.sealWithNonce(key, nonce, SUNSCREEN, new byte[0]))
                .isEqualTo(ChaChaPoly.seal(key, 42, SUNSCREEN, new byte[0]));
    }

    @Test
    void blake2sRfc7693AppendixB() {
        assertThat(HEX.formatHex(Blake2s.hash("abc".getBytes(StandardCharsets.US_ASCII))))
                .isEqualTo("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
    }

    @Test
    void hchacha20DraftXchachaSection2_2_1() {
        byte[] key = range(0, 32);
        byte[] nonce = hex("000000090000004a0000000031415927");
        assertThat(HEX.formatHex(XChaChaPoly.hchacha20(key, nonce)))
                .isEqualTo("82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc");
    }

    @Test
    void xchachaPolyDraftAppendixA_3_1() {
        byte[] key = RFC_KEY;
        byte[] nonce = range(0x40, 24);
        byte[] aad = RFC_AAD;
        byte[] out = XChaChaPoly.seal(key, nonce, SUNSCREEN, aad);
        assertThat(HEX.formatHex(out)).isEqualTo("bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
                + "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e"
                + "3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e"
                + "c0875924c1c7987947deafd8780acf49");
        assertThat(XChaChaPoly.open(key, nonce, out, aad)).hasValueSatisfying(p -> assertThat(p).isEqualTo(SUNSCREEN));
        out[0] ^= 1;
        assertThat(XChaChaPoly.open(key, nonce, out, aad)).isEmpty();
    }

    @Test
    void kdfMatchesWireguardGoVectors() {
        String[][] cases = {
                {"746573742d6b6579", "746573742d696e707574",
                        "6f0e5ad38daba1bea8a0d213688736f19763239305e0f58aba697f9ffc41c633",
                        "df1194df20802a4fe594cde27e92991c8cae66c366e8106aaa937a55fa371e8a",
                        "fac6e2745a325f5dc5d11a5b165aad08b0ada28e7b4e666b7c077934a4d76c24"},
                {"776972656775617264", "776972656775617264",
                        "491d43bbfdaa8750aaf535e334ecbfe5129967cd64635101c566d4caefda96e8",
                        "1e71a379baefd8a79aa4662212fcafe19a23e2b609a3db7d6bcba8f560e3d25f",
                        "31e1ae48bddfbe5de38f295e5452b1909a1b4e38e183926af3780b0c1e1f0160"},
                {"", "", "8387b46bf43eccfcf349552a095d8315c4055beb90208fb1be23b894bc2ed5d0",
                        "58a0e5f6faefccf4807bff1f05fa8a9217945762040bcec2f4b4a62bdfe0e86e",
                        "0ce6ea98ec548f8e281e93e32db65621c45eb18dc6f0a7ad94178610a2f7338e"}};
        for (String[] c : cases) {
            for (int n = 1; n <= 3; n++) {
                byte[][] t = Blake2s.kdf(n, hex(c[0]), hex(c[1]));
                for (int i = 0; i < n; i++) {
                    assertThat(HEX.formatHex(t[i])).as("KDF%d t%d of key %s", n, i, c[0]).isEqualTo(c[2 + i]);
                }
            }
        }
    }
}
