import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMessage, type DescService, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";

/**
 * A plain @grpc/grpc-js client for one of our services, with messages (de)serialized by the
 * generated protobuf-es schemas: the standard gRPC stack, no Connect involved.
 */
export function grpcJsClient(
  service: DescService,
  address: string,
  metadata: Record<string, string> = {},
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
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
  const client = new Client(address.replace(/^https?:\/\//, ""), credentials);
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
