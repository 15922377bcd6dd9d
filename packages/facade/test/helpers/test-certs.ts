import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

export interface CertFiles {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

const openssl = (cwd: string, ...args: string[]) => execFileSync("openssl", args, { cwd, stdio: "pipe" });
const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** Signs a new leaf certificate for name with the CA in dir; returns the cert and key paths. */
export function signLeaf(dir: string, name: string, extensions: string): { cert: string; key: string } {
  const ext = path.join(dir, `${name}.ext`);
  fs.writeFileSync(ext, extensions);
  openssl(dir, "req", ...EC, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
  openssl(dir, "x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.crt`, "-days", "2", "-extfile", ext);
  return { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
}

/** A throw-away CA, a server certificate for 127.0.0.1/localhost and a client certificate (openssl). */
export function makeTestCerts(dir: string): CertFiles {
  openssl(dir, "req", "-x509", ...EC, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=llmlb test CA");
  const server = signLeaf(dir, "server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  const client = signLeaf(dir, "router", "extendedKeyUsage=clientAuth\n");
  return { ca: path.join(dir, "ca.crt"), serverCert: server.cert, serverKey: server.key, clientCert: client.cert, clientKey: client.key };
}
