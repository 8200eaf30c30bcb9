package dev.wisp.cli;

import dev.wisp.controlplane.model.Cidr;
import java.net.InetAddress;
import picocli.CommandLine;

/**
 * Options that name an IP address: a literal IPv4 or IPv6 address, never a name to look up. A
 * value that is not one is picocli's usage error (exit 2), naming the option.
 */
public final class IpAddressConverter implements CommandLine.ITypeConverter<InetAddress> {
    @Override
    public InetAddress convert(String text) {
        try {
            return Cidr.Addresses.parseLiteral(text);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.TypeConversionException(e.getMessage());
        }
    }
}
