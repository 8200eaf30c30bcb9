package dev.wisp.testing;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.PrivateKey;
import java.security.interfaces.ECPrivateKey;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Looks for secrets where they must not be: in log lines, admin answers and files. It knows the
 * actual secrets of the run under test ({@link #key}, {@link #bytes}, {@link #text}) and finds each
 * as it is (raw bytes, text), in hex (either case) and in base64 (standard and URL alphabets, at each
 * of the three byte alignments, so a key inside a longer base64 blob such as a PKCS#8 PEM body is
 * found too); and it finds any PEM private key block, whoever's key it is.
 *
 * <p>Files: a file holding a secret is a finding unless only its owner may read it (no group or other
 * bits), since another local user could copy it; {@link #scanText} applies to text that must hold no
 * secret at all (logs, {@code /config_dump}, {@code /flows}).
 *
 * <p>Immutable once built (the builder methods return new scans); safe to share between threads.
 */
public final class SecretScan {
    private static final Pattern PEM_PRIVATE_KEY = Pattern.compile("-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----");
    /** Shorter encodings could match by chance; 12 bytes of key is 16 base64 or 24 hex characters. */
    private static final int MIN_SECRET_BYTES = 12;
    private static final Set<PosixFilePermission> SHARED_READ = Set.of(PosixFilePermission.GROUP_READ,
            PosixFilePermission.OTHERS_READ);

    private final List<Needle> needles;

    /** One way a secret can appear: {@code form} names the secret and the encoding for the finding. */
    private record Needle(String form, String text) {}

    /**
     * Where a secret was seen.
     *
     * @param where the log, endpoint or file
     * @param what which secret in which form, or "PEM private key block", or the file's mode
     */
    public record Finding(String where, String what) {
        @Override
        public String toString() {
            return where + ": " + what;
        }
    }

    private SecretScan(List<Needle> needles) {
        this.needles = List.copyOf(needles);
    }

    /** A scan that knows no particular secret (it still finds PEM private key blocks). */
    public static SecretScan empty() {
        return new SecretScan(List.of());
    }

    /**
     * Adds a private key: its encoded form (PKCS#8 DER) and, for an EC key, its raw scalar (the 32
     * bytes that are the key, whatever the container).
     */
    public SecretScan key(String name, PrivateKey key) {
        requireNonNull(key, "key");
        SecretScan s = bytes(name + " (PKCS#8)", key.getEncoded());
        if (key instanceof ECPrivateKey ec) {
            int size = (ec.getParams().getCurve().getField().getFieldSize() + 7) / 8;
            s = s.bytes(name + " (raw scalar)", unsigned(ec.getS(), size));
        }
        return s;
    }

    /** Adds secret bytes: found raw, in hex and in base64. */
    public SecretScan bytes(String name, byte[] secret) {
        requireNonNull(name, "name");
        if (secret.length < MIN_SECRET_BYTES) {
            throw new IllegalArgumentException("secret " + name + " has " + secret.length + " bytes; at least "
                    + MIN_SECRET_BYTES + " are needed to find it without false matches");
        }
        List<Needle> out = new ArrayList<>(needles);
        out.add(new Needle(name + " as raw bytes", new String(secret, StandardCharsets.ISO_8859_1)));
        out.add(new Needle(name + " in hex", HexFormat.of().formatHex(secret)));
        out.add(new Needle(name + " in hex", HexFormat.of().withUpperCase().formatHex(secret)));
        for (String b64 : base64Cores(secret)) {
            out.add(new Needle(name + " in base64", b64));
        }
        return new SecretScan(out);
    }

    /** Adds a secret that is text (a token): found as it is, and its bytes in hex and base64. */
    public SecretScan text(String name, String secret) {
        SecretScan s = bytes(name, secret.getBytes(StandardCharsets.UTF_8));
        List<Needle> out = new ArrayList<>(s.needles);
        out.add(new Needle(name, secret));
        return new SecretScan(out);
    }

    /** Every appearance of a known secret, or of a PEM private key block, in {@code text}. */
    public List<Finding> scanText(String where, String text) {
        requireNonNull(where, "where");
        Set<Finding> found = new LinkedHashSet<>();
        if (PEM_PRIVATE_KEY.matcher(text).find()) {
            found.add(new Finding(where, "PEM private key block"));
        }
        for (Needle n : needles) {
            if (text.contains(n.text())) {
                found.add(new Finding(where, n.form()));
            }
        }
        return List.copyOf(found);
    }

    /**
     * Every regular file under {@code root} (symbolic links are not followed) that holds a secret and
     * may be read by group or others, with what it holds and its mode.
     */
    public List<Finding> scanFiles(Path root) {
        List<Finding> found = new ArrayList<>();
        try (var files = Files.walk(root)) {
            for (Path f : files.filter(p -> Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)).toList()) {
                String content = new String(Files.readAllBytes(f), StandardCharsets.ISO_8859_1);
                List<Finding> inside = scanText(f.toString(), content);
                Set<PosixFilePermission> mode = Files.getPosixFilePermissions(f, LinkOption.NOFOLLOW_LINKS);
                if (!inside.isEmpty() && mode.stream().anyMatch(SHARED_READ::contains)) {
                    for (Finding i : inside) {
                        found.add(new Finding(i.where(), i.what() + " in a file of mode " + PosixFilePermissions
                                .toString(mode) + " (readable by others)"));
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot scan " + root + ": " + e.getMessage(), e);
        }
        return found;
    }

    /**
     * The base64 characters that encode {@code secret} whatever its offset in a longer encoded blob:
     * for each of the three alignments, the characters fully determined by the secret's bytes alone.
     */
    static List<String> base64Cores(byte[] secret) {
        List<String> out = new ArrayList<>();
        for (int pad = 0; pad < 3; pad++) {
            byte[] shifted = new byte[pad + secret.length];
            System.arraycopy(secret, 0, shifted, pad, secret.length);
            String enc = Base64.getEncoder().withoutPadding().encodeToString(shifted);
            // Characters touching the zero padding in front, or the unknown bytes after, are dropped.
            int from = (pad * 8 + 5) / 6;
            int usableBits = shifted.length * 8;
            int to = usableBits / 6;
            String core = enc.substring(from, Math.min(to, enc.length()));
            out.add(core);
            out.add(core.replace('+', '-').replace('/', '_'));
        }
        return out.stream().distinct().toList();
    }

    private static byte[] unsigned(BigInteger v, int size) {
        byte[] b = v.toByteArray();
        if (b.length == size) {
            return b;
        }
        if (b.length > size) {
            return Arrays.copyOfRange(b, b.length - size, b.length);
        }
        byte[] out = new byte[size];
        System.arraycopy(b, 0, out, size - b.length, b.length);
        return out;
    }
}
