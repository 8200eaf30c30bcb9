package dev.wisp.e2e;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ServerCalls;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamFrameToHttpObjectCodec;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * A gRPC service and an HTTP/2 server for the waypoint's HTTP/2 tests, run in a pod, with a client
 * to call them. The service {@code demo.Echo} (methods {@code A}, {@code B}, {@code C}; messages are
 * UTF-8 strings, no generated code) answers {@code NAME METHOD REQUEST}.
 *
 * <ul>
 *   <li>{@code server NAME GRPC_PORT H2_PORT}: the service on {@code GRPC_PORT} and, on {@code H2_PORT},
 *       a prior-knowledge HTTP/2 server answering every request {@code NAME PATH over HTTP/2}; prints
 *       {@code listening}.
 *   <li>{@code client TARGET METHOD…}: one channel (plaintext, h2c prior knowledge) to {@code host:port},
 *       every call started at once, then one line per call in order: {@code call METHOD ok ANSWER} or
 *       {@code call METHOD failed CODE DESCRIPTION}; then {@code done}.
 * </ul>
 */
public final class GrpcPodApp {
    static final String SERVICE = "demo.Echo";

    private GrpcPodApp() {}

    static MethodDescriptor<String, String> method(String name) {
        return MethodDescriptor.<String, String>newBuilder().setType(MethodDescriptor.MethodType.UNARY)
                .setFullMethodName(MethodDescriptor.generateFullMethodName(SERVICE, name)).setRequestMarshaller(
                        TEXT)
                .setResponseMarshaller(TEXT).build();
    }

    static final MethodDescriptor.Marshaller<String> TEXT = new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(String value) {
            return new ByteArrayInputStream(value.getBytes(StandardCharsets.UTF_8));
        }

        @Override
        public String parse(InputStream stream) {
            try {
                return new String(stream.readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    };

    public static void main(String[] args) throws Exception {
        if (args[0].equals("server")) {
            serve(args[1], Integer.parseInt(args[2]), Integer.parseInt(args[3]));
        } else {
            call(args[1], List.of(args).subList(2, args.length));
        }
    }

    private static void serve(String name, int grpcPort, int h2Port) throws Exception {
        ServerServiceDefinition.Builder service = ServerServiceDefinition.builder(SERVICE);
        for (String m : List.of("A", "B", "C")) {
            service.addMethod(method(m), ServerCalls.asyncUnaryCall((request, answer) -> {
                answer.onNext(name + " " + m + " " + request);
                answer.onCompleted();
            }));
        }
        Server grpc = NettyServerBuilder.forPort(grpcPort).addService(service.build()).build().start();
        Channel h2 = new ServerBootstrap().group(new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory()))
                .channel(NioServerSocketChannel.class).childHandler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        ch.pipeline().addLast(Http2FrameCodecBuilder.forServer().build(), new Http2MultiplexHandler(
                                new ChannelInitializer<Http2StreamChannel>() {
                                    @Override
                                    protected void initChannel(Http2StreamChannel s) {
                                        s.pipeline().addLast(new Http2StreamFrameToHttpObjectCodec(true),
                                                new HttpObjectAggregator(1 << 16), new PlainAnswer(name));
                                    }
                                }));
                    }
                }).bind(h2Port).sync().channel();
        System.out.println("listening");
        System.out.flush();
        grpc.awaitTermination();
        h2.closeFuture().sync();
    }

    private static final class PlainAnswer extends SimpleChannelInboundHandler<FullHttpRequest> {
        private final String name;

        PlainAnswer(String name) {
            this.name = name;
        }

        @Override
        protected void channelRead0(ChannelHandlerContext c, FullHttpRequest req) {
            FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK, Unpooled
                    .copiedBuffer(name + " " + req.uri() + " over HTTP/2\n", StandardCharsets.UTF_8));
            r.headers().set("content-type", "text/plain").setInt("content-length", r.content().readableBytes());
            c.writeAndFlush(r);
        }
    }

    private static void call(String target, List<String> methods) throws InterruptedException {
        ManagedChannel channel = NettyChannelBuilder.forTarget(target).usePlaintext().build();
        List<Future<String>> calls = new ArrayList<>();
        for (String m : methods) {
            calls.add(ClientCalls.futureUnaryCall(channel.newCall(method(m), CallOptions.DEFAULT.withDeadlineAfter(
                    20, TimeUnit.SECONDS)), "hi"));
        }
        for (int i = 0; i < methods.size(); i++) {
            try {
                System.out.println("call " + methods.get(i) + " ok " + calls.get(i).get());
            } catch (ExecutionException e) {
                Status s = e.getCause() instanceof StatusRuntimeException x
                        ? x.getStatus()
                        : Status.fromThrowable(e
                                .getCause());
                System.out.println("call " + methods.get(i) + " failed " + s.getCode() + " " + s.getDescription());
            }
        }
        System.out.println("done");
        System.out.flush();
        channel.shutdownNow();
    }
}
