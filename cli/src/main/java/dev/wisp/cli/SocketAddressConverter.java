package dev.wisp.cli;

import dev.wisp.base.HostPort;
import dev.wisp.controlplane.model.Cidr;
import java.net.InetSocketAddress;
import picocli.CommandLine;

/**
 * Options that name a socket address, {@code IP:PORT} or {@code [IPv6]:PORT}: a literal address
 * only, so that a listener or an upstream is never chosen by a name lookup at start. A value that
 * is not one is picocli's usage error (exit 2), naming the option.
 */
public final class SocketAddressConverter implements CommandLine.ITypeConverter<InetSocketAddress> {
    @Override
    public InetSocketAddress convert(String text) {
        HostPort at;
        try {
            at = HostPort.parse(text);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.TypeConversionException(e.getMessage());
        }
        try {
            return new InetSocketAddress(Cidr.Addresses.parseLiteral(at.host()), at.port());
        } catch (IllegalArgumentException e) {
            throw new CommandLine.TypeConversionException("'" + text + "' is not IP:PORT: " + e.getMessage());
        }
    }
}
