import fs from "node:fs";
import tls from "node:tls";
import { LlmlbError } from "../errors/index.js";

export interface TlsFiles {
  cert: string;
  key: string;
  /** Client CA bundle: when set, clients must present a certificate it signed (mutual TLS). */
  clientCa: string;
}

export interface TlsOptions {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  requestCert: boolean;
  rejectUnauthorized: boolean;
}

function readPem(file: string, setting: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new LlmlbError("INVALID_CONFIG", `${setting} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { file });
  }
}

/** The node's certificate, key and client CA, read from disk; reload() swaps them on running servers. */
export class TlsMaterial {
  private readonly servers = new Set<tls.Server>();
  private current: TlsOptions;

  constructor(private readonly files: TlsFiles) {
    this.current = this.read();
  }

  /** undefined when LLMLB_TLS_CERT and LLMLB_TLS_KEY are unset; an error when only one is set. */
  static fromSettings(files: TlsFiles): TlsMaterial | undefined {
    if (!files.cert && !files.key) {
      if (files.clientCa) throw new LlmlbError("INVALID_CONFIG", "LLMLB_TLS_CLIENT_CA needs LLMLB_TLS_CERT and LLMLB_TLS_KEY: client certificates are checked only over TLS");
      return undefined;
    }
    if (!files.cert || !files.key) throw new LlmlbError("INVALID_CONFIG", "set both LLMLB_TLS_CERT and LLMLB_TLS_KEY to serve TLS (one of them is missing)");
    return new TlsMaterial(files);
  }

  get options(): TlsOptions {
    return this.current;
  }

  get mutual(): boolean {
    return Boolean(this.files.clientCa);
  }

  /** Servers whose certificate follows reload(). */
  track(server: tls.Server): void {
    this.servers.add(server);
    server.once("close", () => this.servers.delete(server));
  }

  /** Re-reads the files and applies them to new connections; throws (keeping the old ones) when they are bad. */
  reload(): void {
    const next = this.read();
    for (const server of this.servers) server.setSecureContext(next);
    this.current = next;
  }

  private read(): TlsOptions {
    const options: TlsOptions = {
      cert: readPem(this.files.cert, "LLMLB_TLS_CERT"),
      key: readPem(this.files.key, "LLMLB_TLS_KEY"),
      requestCert: Boolean(this.files.clientCa),
      rejectUnauthorized: Boolean(this.files.clientCa),
      ...(this.files.clientCa ? { ca: readPem(this.files.clientCa, "LLMLB_TLS_CLIENT_CA") } : {}),
    };
    try {
      tls.createSecureContext(options);
    } catch (err) {
      throw new LlmlbError("INVALID_CONFIG", `LLMLB_TLS_CERT / LLMLB_TLS_KEY / LLMLB_TLS_CLIENT_CA do not form a usable TLS setup: ${(err as Error).message}`);
    }
    return options;
  }
}
