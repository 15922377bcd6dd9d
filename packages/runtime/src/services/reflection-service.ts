import { toBinary, type DescFile, type DescMessage, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import * as v1 from "../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.js";

/** Both versions of the protocol: grpcurl asks v1 first, older tools only know v1alpha. */
export const REFLECTION_SERVICES = [v1.ServerReflection, v1alpha.ServerReflection] as const;

type Request = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;
type Response = MessageInitShape<typeof v1.ServerReflectionResponseSchema>;

/**
 * The files that declare the services, with everything they import, found by file name and by
 * fully-qualified symbol: what a reflection client needs to build requests without .proto files.
 */
class DescriptorIndex {
  readonly services: string[];
  private readonly files = new Map<string, DescFile>();
  private readonly symbols = new Map<string, DescFile>();
  private readonly messages = new Map<string, DescMessage>();

  constructor(services: readonly DescService[]) {
    this.services = services.map((s) => s.typeName);
    for (const service of services) this.add(service.file);
  }

  file(name: string): DescFile | undefined {
    return this.files.get(name);
  }

  fileDeclaring(symbol: string): DescFile | undefined {
    return this.symbols.get(symbol);
  }

  message(typeName: string): DescMessage | undefined {
    return this.messages.get(typeName);
  }

  private add(file: DescFile): void {
    const name = file.proto.name;
    if (this.files.has(name)) return;
    this.files.set(name, file);
    for (const dependency of file.dependencies) this.add(dependency);
    const declare = (typeName: string) => this.symbols.set(typeName, file);
    const addMessage = (message: DescMessage) => {
      declare(message.typeName);
      this.messages.set(message.typeName, message);
      message.nestedMessages.forEach(addMessage);
      message.nestedEnums.forEach((e) => declare(e.typeName));
      message.nestedExtensions.forEach((e) => declare(e.typeName));
    };
    file.messages.forEach(addMessage);
    file.enums.forEach((e) => declare(e.typeName));
    file.extensions.forEach((e) => declare(e.typeName));
    for (const service of file.services) {
      declare(service.typeName);
      for (const method of service.methods) declare(`${service.typeName}.${method.name}`);
    }
  }
}

/**
 * gRPC Server Reflection (v1 and v1alpha) over the services given, so grpcurl, grpcui, Postman and
 * Evans list and call them without the .proto files.
 */
export function reflectionRoutes(services: readonly DescService[]): (router: ConnectRouter) => void {
  const index = new DescriptorIndex([...services, ...REFLECTION_SERVICES]);
  const serverReflectionInfo = async function* (requests: AsyncIterable<Request>): AsyncGenerator<Response> {
    // Files already sent on this stream are not sent again as dependencies (the client has them).
    const sent = new Set<string>();
    for await (const request of requests) {
      yield { validHost: request.host, originalRequest: request as v1.ServerReflectionRequest, messageResponse: answer(index, request, sent) };
    }
  };
  return (router) => {
    router.service(v1.ServerReflection, { serverReflectionInfo });
    router.service(v1alpha.ServerReflection, { serverReflectionInfo: serverReflectionInfo as never });
  };
}

function answer(index: DescriptorIndex, request: Request, sent: Set<string>): Response["messageResponse"] {
  const asked = request.messageRequest;
  switch (asked.case) {
    case "listServices":
      return { case: "listServicesResponse", value: { service: index.services.map((name) => ({ name })) } };
    case "fileByFilename": {
      const file = index.file(asked.value);
      return file ? filesFrom(file, sent) : notFound(`no file named ${asked.value}; list the services, then ask for the file containing one of them`);
    }
    case "fileContainingSymbol": {
      const file = index.fileDeclaring(asked.value);
      return file ? filesFrom(file, sent) : notFound(`no service, method, message or enum named ${asked.value} (fully-qualified, e.g. llmlb.node.v1.InferenceService)`);
    }
    case "fileContainingExtension":
      return notFound(`no extension ${asked.value.extensionNumber} of ${asked.value.containingType} is declared here`);
    case "allExtensionNumbersOfType":
      return index.message(asked.value)
        ? { case: "allExtensionNumbersResponse", value: { baseTypeName: asked.value, extensionNumber: [] } }
        : notFound(`no message named ${asked.value}`);
    default:
      return { case: "errorResponse", value: { errorCode: Code.InvalidArgument, errorMessage: "the request names nothing to look up: set one of file_by_filename, file_containing_symbol, file_containing_extension, all_extension_numbers_of_type, list_services" } };
  }
}

/** The file first, then what it imports (transitively) that this stream has not sent yet. */
function filesFrom(file: DescFile, sent: Set<string>): Response["messageResponse"] {
  const out: Uint8Array[] = [];
  const queue = [file];
  const seen = new Set([file.proto.name]);
  while (queue.length > 0) {
    const next = queue.shift()!;
    if (next === file || !sent.has(next.proto.name)) {
      out.push(toBinary(FileDescriptorProtoSchema, next.proto));
      sent.add(next.proto.name);
    }
    for (const dependency of next.dependencies) {
      if (seen.has(dependency.proto.name)) continue;
      seen.add(dependency.proto.name);
      queue.push(dependency);
    }
  }
  return { case: "fileDescriptorResponse", value: { fileDescriptorProto: out } };
}

function notFound(message: string): Response["messageResponse"] {
  return { case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: message } };
}
