package dev.wisp.e2e;

import dev.wisp.testing.RecordingObserver;
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
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.concurrent.TimeoutException;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * A gRPC service and an HTTP/2 server for the waypoint's HTTP/2 tests, run in a pod, with a client
 * to call them. The service {@code demo.Echo} (methods {@code A}, {@code B}, {@code C}; messages are
 * UTF-8 strings, no generated code) answers {@code NAME METHOD REQUEST}; its server-streaming method
 * {@code Stream} answers a request {@code N} with N messages one second apart, each
 * {@code NAME Stream I sent=EPOCH_MS}, and its bidi-streaming method {@code Chat} answers each message
 * {@code M} at once with {@code NAME Chat M}.
 *
 * <ul>
 *   <li>{@code server NAME GRPC_PORT H2_PORT}: the service on {@code GRPC_PORT} and, on {@code H2_PORT},
 *       a prior-knowledge HTTP/2 server answering every request {@code NAME PATH over HTTP/2}; prints
 *       {@code listening}.
 *   <li>{@code client TARGET METHOD…}: one channel (plaintext, h2c prior knowledge) to {@code host:port},
 *       every call started at once, then one line per call in order: {@code call METHOD ok ANSWER} or
 *       {@code call METHOD failed CODE DESCRIPTION}; then {@code done}.
 *   <li>{@code stream TARGET N}: one {@code Stream} call; a line {@code message ANSWER} per message as it
 *       comes, then {@code first-received=EPOCH_MS}, then {@code status CODE}.
 *   <li>{@code chat TARGET N}: one {@code Chat} call in lock step: sends {@code mI} and waits (20 s at
 *       most) for its answer before sending the next; a line {@code reply ANSWER} per answer (or
 *       {@code no reply to mI}), then {@code status CODE} once the call is half-closed.
 * </ul>
 */
public final class GrpcPodApp {
    static final String SERVICE = "demo.Echo";

    private GrpcPodApp() {}

    static MethodDescriptor<String, String> method(String name) {
        return method(name, MethodDescriptor.MethodType.UNARY);
    }

    static MethodDescriptor<String, String> method(String name, MethodDescriptor.MethodType type) {
        return MethodDescriptor.<String, String>newBuilder().setType(type)
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
        switch (args[0]) {
            case "server" -> serve(args[1], Integer.parseInt(args[2]), Integer.parseInt(args[3]));
            case "stream" -> stream(args[1], Integer.parseInt(args[2]));
            case "chat" -> chat(args[1], Integer.parseInt(args[2]));
            default -> call(args[1], List.of(args).subList(2, args.length));
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
        service.addMethod(method("Stream", MethodDescriptor.MethodType.SERVER_STREAMING), ServerCalls
                .asyncServerStreamingCall((request, answer) -> {
                    int n = Integer.parseInt(request);
                    for (int i = 1; i <= n; i++) {
                        if (i > 1) {
                            pause(); // spaces the messages: the client sees the first long before the last is sent
                        }
                        answer.onNext(name + " Stream " + i + " sent=" + System.currentTimeMillis());
                    }
                    answer.onCompleted();
                }));
        service.addMethod(method("Chat", MethodDescriptor.MethodType.BIDI_STREAMING), ServerCalls
                .asyncBidiStreamingCall(answer -> new StreamObserver<String>() {
                    @Override
                    public void onNext(String m) {
                        answer.onNext(name + " Chat " + m);
                    }

                    @Override
                    public void onError(Throwable t) {}

                    @Override
                    public void onCompleted() {
                        answer.onCompleted();
                    }
                }));
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

    private static void pause() {
        try {
            Thread.sleep(1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void stream(String target, int n) throws InterruptedException {
        ManagedChannel channel = NettyChannelBuilder.forTarget(target).usePlaintext().build();
        Long first = null;
        try {
            Iterator<String> answers = ClientCalls.blockingServerStreamingCall(channel, method("Stream",
                    MethodDescriptor.MethodType.SERVER_STREAMING),
                    CallOptions.DEFAULT.withDeadlineAfter(60,
                            TimeUnit.SECONDS),
                    String.valueOf(n));
            while (answers.hasNext()) {
                String m = answers.next();
                if (first == null) {
                    first = System.currentTimeMillis();
                }
                System.out.println("message " + m);
            }
            System.out.println("first-received=" + first);
            System.out.println("status OK");
        } catch (StatusRuntimeException e) {
            System.out.println("status " + e.getStatus().getCode() + " " + e.getStatus().getDescription());
        }
        System.out.flush();
        channel.shutdownNow();
    }

    private static void chat(String target, int n) throws InterruptedException {
        ManagedChannel channel = NettyChannelBuilder.forTarget(target).usePlaintext().build();
        RecordingObserver<String> answers = new RecordingObserver<>();
        StreamObserver<String> requests = ClientCalls.asyncBidiStreamingCall(channel.newCall(method("Chat",
                MethodDescriptor.MethodType.BIDI_STREAMING),
                CallOptions.DEFAULT.withDeadlineAfter(120,
                        TimeUnit.SECONDS)),
                answers);
        for (int i = 1; i <= n; i++) {
            requests.onNext("m" + i);
            String reply = answers.messages().poll(20, TimeUnit.SECONDS);
            System.out.println(reply == null ? "no reply to m" + i : "reply " + reply);
            if (reply == null) {
                break;
            }
        }
        requests.onCompleted();
        try {
            Status s = answers.end().get(30, TimeUnit.SECONDS);
            System.out.println("status " + s.getCode());
        } catch (ExecutionException | TimeoutException e) {
            System.out.println("status none: " + e);
        }
        System.out.flush();
        channel.shutdownNow();
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
