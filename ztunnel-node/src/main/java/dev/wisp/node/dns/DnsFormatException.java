package dev.wisp.node.dns;

/** A DNS message the proxy cannot read: cut short, a looping or forward name pointer, an oversize name. */
final class DnsFormatException extends Exception {
    DnsFormatException(String message) {
        super(message);
    }
}
