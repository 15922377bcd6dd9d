import { create, type DescMessage, type DescMethod, type DescMethodStreaming, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  createHandlerContext,
  type ConnectRouter,
  type HandlerContext,
  type Interceptor,
  type StreamRequest,
  type StreamResponse,
  type Transport,
} from "@connectrpc/connect";

type ServerStreamingImpl = (request: unknown, context: HandlerContext) => AsyncIterable<unknown>;

/**
 * A transport to services in this process that hands server-streamed messages over as objects:
 * the same implementations and server interceptors as the listeners, but no protobuf encoding,
 * framing or decoding per message (a chat stream sends one message per token). Unary and other
 * calls go through `fallback` (Connect's router transport), so their results are copies the
 * caller may keep or change.
 */
export function createDirectTransport(
  routes: (router: ConnectRouter) => void,
  interceptors: readonly Interceptor[],
  fallback: Transport,
): Transport {
  const streaming = serverStreamingImpls(routes);
  return {
    unary: (method, signal, timeoutMs, header, input, contextValues) => fallback.unary(method, signal, timeoutMs, header, input, contextValues),
    stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: ConstructorParameters<typeof Headers>[0],
      input: AsyncIterable<MessageInitShape<I>>,
      contextValues?: ReturnType<typeof createContextValues>,
    ): Promise<StreamResponse<I, O>> {
      const impl = method.methodKind === "server_streaming" ? streaming.get(method) : undefined;
      if (!impl) return fallback.stream(method, signal, timeoutMs, header, input, contextValues);
      const url = `in-process:///${method.parent.typeName}/${method.name}`;
      const request: StreamRequest<I, O> = {
        stream: true,
        service: method.parent,
        method,
        requestMethod: "POST",
        url,
        signal: signal ?? new AbortController().signal,
        header: new Headers(header),
        contextValues: contextValues ?? createContextValues(),
        message: messagesOf(method.input, input),
      };
      const call = async (req: StreamRequest<I, O>): Promise<StreamResponse<I, O>> => {
        const context = createHandlerContext({
          service: method.parent,
          method,
          protocolName: "in-process",
          requestMethod: "POST",
          url,
          requestSignal: req.signal,
          requestHeader: req.header,
          contextValues: req.contextValues,
          ...(timeoutMs !== undefined ? { timeoutMs } : {}),
        });
        const first = await firstMessage(req.message);
        return {
          stream: true,
          service: method.parent,
          method,
          header: context.responseHeader,
          trailer: context.responseTrailer,
          message: outputsOf(method.output, impl(first, context), context),
        };
      };
      // The first interceptor is the outermost, as on Connect's own handlers.
      const chain = [...interceptors].reverse().reduce<(req: StreamRequest<I, O>) => Promise<StreamResponse<I, O>>>(
        (next, interceptor) => interceptor(next as never) as never,
        call,
      );
      return chain(request);
    },
  };
}

/** The implementation of every server-streaming method the routes register, by method. */
function serverStreamingImpls(routes: (router: ConnectRouter) => void): Map<DescMethod, ServerStreamingImpl> {
  const impls = new Map<DescMethod, ServerStreamingImpl>();
  const collect = (method: DescMethod, impl: unknown, self?: object) => {
    if (method.methodKind !== "server_streaming" || typeof impl !== "function") return;
    impls.set(method, (request, context) => (impl as ServerStreamingImpl).call(self, request, context));
  };
  const router = {
    handlers: [],
    service(service: DescService, implementation: Record<string, unknown>) {
      for (const method of service.methods) collect(method, implementation[method.localName], implementation);
      return router;
    },
    rpc(method: DescMethod, implementation: unknown) {
      collect(method, implementation);
      return router;
    },
  };
  routes(router as unknown as ConnectRouter);
  return impls;
}

async function* messagesOf<I extends DescMessage>(schema: I, input: AsyncIterable<MessageInitShape<I>>) {
  for await (const message of input) yield create(schema, message);
}

async function firstMessage<T>(messages: AsyncIterable<T>): Promise<T> {
  for await (const message of messages) return message;
  throw new ConnectError("protocol error: missing request message", Code.InvalidArgument);
}

/** The handler's messages as full messages; the handler's signal fires when the stream ends, as on a listener. */
async function* outputsOf<O extends DescMessage>(schema: O, messages: AsyncIterable<unknown>, context: ReturnType<typeof createHandlerContext>) {
  try {
    for await (const message of messages) yield create(schema, message as MessageInitShape<O>);
  } catch (err) {
    context.abort(err);
    throw err;
  } finally {
    context.abort();
  }
}
