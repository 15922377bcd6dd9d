import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMessage, type DescService, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { ErrorInfoSchema } from "@llmlb/runtime/gen/google/rpc/error_details_pb";
import { StatusSchema } from "@llmlb/runtime/gen/google/rpc/status_pb";

/**
 * A plain @grpc/grpc-js client for one of our services, with messages (de)serialized by the
 * generated protobuf-es schemas: the standard gRPC stack, no Connect involved.
 */
export function grpcJsClient(
  service: DescService,
  address: string,
  metadata: Record<string, string> = {},
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  channelOptions: grpc.ChannelOptions = {},
) {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: (value: unknown) => Buffer.from(toBinary(method.input, create(method.input, value as MessageInitShape<DescMessage>))),
      requestDeserialize: (bytes: Buffer) => fromBinary(method.input, bytes),
      responseSerialize: (value: unknown) => Buffer.from(toBinary(method.output, value as MessageShape<DescMessage>)),
      responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
    };
  }
  const Client = grpc.makeGenericClientConstructor(definition as grpc.ServiceDefinition, service.name);
  const client = new Client(address.replace(/^https?:\/\//, ""), credentials, channelOptions);
  const meta = () => {
    const m = new grpc.Metadata();
    for (const [k, v] of Object.entries(metadata)) m.set(k, v);
    return m;
  };
  return {
    raw: client,
    unary<T>(method: string, request: unknown): Promise<T> {
      return new Promise((resolve, reject) => {
        (client as unknown as Record<string, Function>)[method]!.call(client, request, meta(), (err: grpc.ServiceError | null, res: T) =>
          err ? reject(err) : resolve(res),
        );
      });
    },
    stream<T>(method: string, request: unknown): grpc.ClientReadableStream<T> {
      return (client as unknown as Record<string, Function>)[method]!.call(client, request, meta());
    },
    close: () => client.close(),
  };
}

/** The google.rpc.ErrorInfo a gRPC error carries in its status details (undefined when it has none). */
export function errorInfoOf(error: grpc.ServiceError): { reason: string; domain: string; metadata: Record<string, string> } | undefined {
  const [details] = error.metadata.get("grpc-status-details-bin");
  if (!(details instanceof Buffer)) return undefined;
  const info = fromBinary(StatusSchema, details).details.find((d) => d.typeUrl.endsWith("google.rpc.ErrorInfo"));
  if (!info) return undefined;
  const { reason, domain, metadata } = fromBinary(ErrorInfoSchema, info.value);
  return { reason, domain, metadata: { ...metadata } };
}

/** Everything a server stream sent, and how it ended: after its last message, or with an error. */
export function streamOutcome<T>(call: grpc.ClientReadableStream<T>): Promise<{ messages: T[]; last?: T; error?: grpc.ServiceError }> {
  const messages: T[] = [];
  return new Promise((resolve) => {
    call.on("data", (message: T) => messages.push(message));
    call.on("error", (error: grpc.ServiceError) => resolve({ messages, error }));
    call.on("end", () => resolve({ messages, last: messages.at(-1) }));
  });
}
