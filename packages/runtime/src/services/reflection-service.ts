import { toBinary, type DescFile, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type DescriptorProto, type EnumDescriptorProto } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import { file_google_rpc_error_details } from "../gen/google/rpc/error_details_pb.js";
import { file_google_rpc_status } from "../gen/google/rpc/status_pb.js";
import * as v1 from "../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.js";

/** Both versions of the protocol: grpcurl asks v1 first, older tools only know v1alpha. */
export const REFLECTION_SERVICES = [v1.ServerReflection, v1alpha.ServerReflection] as const;

type Request = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;
type Response = MessageInitShape<typeof v1.ServerReflectionResponseSchema>;

/**
 * The files that declare the services, with everything they import, and the files of the error
 * details every error carries; found by file name and by fully-qualified symbol (services, methods,
 * messages with their fields, oneofs and map entries, enums with their values, extensions): what a
 * reflection client needs to build requests and read errors without .proto files.
 */
class DescriptorIndex {
  readonly services: string[];
  private readonly files = new Map<string, DescFile>();
  private readonly symbols = new Map<string, DescFile>();
  private readonly messages = new Set<string>();

  constructor(services: readonly DescService[], extraFiles: readonly DescFile[]) {
    this.services = services.map((s) => s.typeName);
    for (const service of services) this.add(service.file);
    for (const file of extraFiles) this.add(file);
  }

  file(name: string): DescFile | undefined {
    return this.files.get(name);
  }

  fileDeclaring(symbol: string): DescFile | undefined {
    return this.symbols.get(symbol);
  }

  isMessage(typeName: string): boolean {
    return this.messages.has(typeName);
  }

  private add(file: DescFile): void {
    const { proto } = file;
    if (this.files.has(proto.name)) return;
    this.files.set(proto.name, file);
    for (const dependency of file.dependencies) this.add(dependency);
    const declare = (scope: string, name: string) => {
      const full = scope ? `${scope}.${name}` : name;
      this.symbols.set(full, file);
      return full;
    };
    // An enum's values are named in the scope that holds the enum, as protobuf scopes them.
    const addEnum = (scope: string, e: EnumDescriptorProto) => {
      declare(scope, e.name);
      for (const value of e.value) declare(scope, value.name);
    };
    const addMessage = (scope: string, message: DescriptorProto) => {
      const full = declare(scope, message.name);
      this.messages.add(full);
      for (const member of [...message.field, ...message.oneofDecl, ...message.extension]) declare(full, member.name);
      for (const nested of message.nestedType) addMessage(full, nested);
      for (const e of message.enumType) addEnum(full, e);
    };
    for (const message of proto.messageType) addMessage(proto.package, message);
    for (const e of proto.enumType) addEnum(proto.package, e);
    for (const extension of proto.extension) declare(proto.package, extension.name);
    for (const service of proto.service) {
      const full = declare(proto.package, service.name);
      for (const method of service.method) declare(full, method.name);
    }
  }
}

/**
 * gRPC Server Reflection (v1 and v1alpha) over the services given, so grpcurl, grpcui, Postman and
 * Evans list and call them without the .proto files.
 */
export function reflectionRoutes(services: readonly DescService[]): (router: ConnectRouter) => void {
  // The error details every error of the node carries (grpc-status-details-bin), for tools that decode them.
  const index = new DescriptorIndex([...services, ...REFLECTION_SERVICES], [file_google_rpc_status, file_google_rpc_error_details]);
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
      return file ? filesFrom(file, sent) : notFound(`no service, method, message, field or enum named ${asked.value} (fully-qualified, e.g. llmlb.node.v1.InferenceService)`);
    }
    case "fileContainingExtension":
      return notFound(`no extension ${asked.value.extensionNumber} of ${asked.value.containingType} is declared here`);
    case "allExtensionNumbersOfType":
      return index.isMessage(asked.value)
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
