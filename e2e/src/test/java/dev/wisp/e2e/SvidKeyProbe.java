package dev.wisp.e2e;

import dev.wisp.spiffe.workload.grpc.SpiffeWorkloadAPIGrpc;
import dev.wisp.spiffe.workload.grpc.X509SVID;
import dev.wisp.spiffe.workload.grpc.X509SVIDRequest;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.MetadataUtils;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioDomainSocketChannel;
import java.net.UnixDomainSocketAddress;
import java.util.HexFormat;
import java.util.concurrent.TimeUnit;

/**
 * Run inside a pod: fetches the pod's X.509-SVID from the Workload API socket given as the argument
 * and prints {@code key <hex of the PKCS#8 key>}, so that the secret scan knows the workload key the
 * pod's agent generated (the same key the agent presents for that identity over HBONE).
 */
public final class SvidKeyProbe {
    private SvidKeyProbe() {}

    public static void main(String[] args) throws Exception {
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        ManagedChannel channel = NettyChannelBuilder.forAddress(UnixDomainSocketAddress.of(args[0])).channelType(
                NioDomainSocketChannel.class).eventLoopGroup(group).withOption(ChannelOption.SO_KEEPALIVE, null)
                .usePlaintext().build();
        try {
            Metadata header = new Metadata();
            header.put(Metadata.Key.of("workload.spiffe.io", Metadata.ASCII_STRING_MARSHALLER), "true");
            var stub = SpiffeWorkloadAPIGrpc.newBlockingStub(channel).withInterceptors(MetadataUtils
                    .newAttachHeadersInterceptor(header)).withDeadlineAfter(30, TimeUnit.SECONDS);
            for (X509SVID svid : stub.fetchX509SVID(X509SVIDRequest.getDefaultInstance()).next().getSvidsList()) {
                System.out.println("key " + HexFormat.of().formatHex(svid.getX509SvidKey().toByteArray()));
            }
        } catch (RuntimeException e) {
            System.out.println("failed " + e);
        } finally {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        }
    }
}
