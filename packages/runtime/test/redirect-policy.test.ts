import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { classifyAddress, classifyHost, classifyUrlHost, redirectProblem, type HostClassifier } from "../src/transfer/address-policy.js";
import { HttpClient } from "../src/transfer/http-client.js";
import { startHfStandin, type HfStandin } from "../../../testkit/standins/index.js";
import { TINY, entry, failure, listTree, openStack } from "./resolver-world.js";

describe("address classes", () => {
  it.each([
    ["8.8.8.8", "public"], ["2606:4700::1111", "public"], ["192.0.2.1", "public"],
    ["10.1.2.3", "private"], ["172.20.0.1", "private"], ["192.168.1.1", "private"], ["100.64.0.1", "private"], ["fd00::2", "private"],
    ["169.254.169.254", "link-local"], ["fe80::1", "link-local"],
    ["127.0.0.1", "loopback"], ["127.8.8.8", "loopback"], ["::1", "loopback"], ["0.0.0.0", "loopback"], ["::ffff:127.0.0.1", "loopback"], ["::ffff:10.0.0.1", "private"],
  ])("%s is %s", (address, expected) => {
    expect(classifyAddress(address)).toBe(expected);
  });

  it("classifies names: localhost and IP literals without DNS", async () => {
    expect(await classifyHost("localhost")).toBe("loopback");
    expect(await classifyHost("[::1]")).toBe("loopback");
    expect(await classifyHost("10.0.0.7")).toBe("private");
  });
});

describe("the redirect rule: never to a more private network than the origin", () => {
  const classes: Record<string, Awaited<ReturnType<HostClassifier>>> = {
    "hub.example": "public", "cdn.example": "public", "mirror.lan": "private", "other.lan": "private", "metadata": "link-local", "127.0.0.1": "loopback",
  };
  const policy = { classify: async (u: URL) => classes[u.hostname]!, allowedPrivateHosts: ["mirror.lan"] };
  const problem = (from: string, to: string) => redirectProblem(new URL(from), new URL(to), policy);

  it("allows same-class and more public targets", async () => {
    expect(await problem("https://hub.example/a", "https://cdn.example/b")).toBeUndefined();
    expect(await problem("http://other.lan/a", "https://cdn.example/b")).toBeUndefined();
    expect(await problem("http://127.0.0.1:1/a", "http://other.lan/b")).toBeUndefined();
    expect(await problem("http://127.0.0.1:1/a", "http://127.0.0.1:2/b")).toBeUndefined();
  });

  it("refuses public → private, link-local or loopback, and private → link-local or loopback", async () => {
    expect(await problem("https://hub.example/a", "http://127.0.0.1:8080/x")).toMatch(
      /hub.example \(a public address\) redirected to 127.0.0.1:8080 \(a loopback address\).*LLMLB_ALLOWED_PRIVATE_HOSTS/,
    );
    expect(await problem("https://hub.example/a", "http://other.lan/x")).toMatch(/a private address/);
    expect(await problem("https://hub.example/a", "http://metadata/latest")).toMatch(/a link-local address/);
    expect(await problem("http://other.lan/a", "http://127.0.0.1:1/x")).toMatch(/a loopback address/);
  });

  it("lets LLMLB_ALLOWED_PRIVATE_HOSTS through, and refuses anything but http and https", async () => {
    expect(await problem("https://hub.example/a", "http://mirror.lan/x")).toBeUndefined();
    expect(await problem("http://127.0.0.1:1/a", "file:///etc/passwd")).toMatch(/file: URL; only http and https are followed/);
    expect(await problem("https://hub.example/a", "ftp://cdn.example/x")).toMatch(/only http and https/);
  });
});

describe("a hub on the public internet redirecting into this machine", () => {
  let hf: HfStandin;
  beforeAll(async () => {
    hf = await startHfStandin();
    await hf.addRepo("org/tiny-GGUF", { files: { "tiny.gguf": TINY } });
  });
  afterAll(async () => hf?.close());

  // The name service is the network edge: here it says the hub's origin is a public address, as
  // huggingface.co would be; its CDN redirect then leads to 127.0.0.1 (the stand-in's CDN).
  const hubIsPublic: HostClassifier = async (url) => (url.origin === new URL(hf.url).origin ? "public" : classifyUrlHost(url));

  async function resolveWith(allowedPrivateHosts: string[]) {
    const http = new HttpClient({ redirects: { classify: hubIsPublic, allowedPrivateHosts } });
    return openStack({ env: { HF_ENDPOINT: hf.url, LLMLB_DOWNLOAD_RETRIES: "0" }, models: [entry("tiny", "org/tiny-GGUF", "tiny.gguf")], http });
  }

  it("is refused with REDIRECT_REFUSED before the target is asked; nothing is installed", async () => {
    const stack = await resolveWith([]);
    hf.clearLog();
    try {
      const err = await failure(stack.resolver.resolve({ modelId: "tiny" }));
      expect(err.reason).toBe("REDIRECT_REFUSED");
      expect(err.message).toMatch(/\(a public address\) redirected to 127\.0\.0\.1:\d+ \(a loopback address\)/);
      expect(hf.requests.filter((r) => r.host === "cdn")).toEqual([]);
      expect(await stack.store.getModel("tiny")).toBeUndefined();
      expect(listTree(`${stack.home}/models`).filter((p) => p.endsWith(".gguf"))).toEqual([]);
    } finally {
      await stack.dispose();
    }
  });

  it("holds for the fetch sources use (ctx.fetch) too: refused, or followed within the same class", async () => {
    const resolveUrl = `${hf.url}/org/tiny-GGUF/resolve/main/tiny.gguf`;
    const guarded = new HttpClient({ redirects: { classify: hubIsPublic } });
    const plain = new HttpClient();
    try {
      await expect(guarded.fetch(resolveUrl, { method: "HEAD" })).rejects.toMatchObject({ reason: "REDIRECT_REFUSED" });
      const followed = await plain.fetch(resolveUrl, { method: "HEAD" });
      expect(followed.status).toBe(200);
      expect(followed.headers.get("content-length")).toBe(String(TINY.length));
    } finally {
      await guarded.close();
      await plain.close();
    }
  });

  it("is followed when the operator lists the target in LLMLB_ALLOWED_PRIVATE_HOSTS", async () => {
    const stack = await resolveWith(["127.0.0.1"]);
    try {
      expect(await stack.resolver.resolve({ modelId: "tiny" })).toMatchObject({ source: "huggingface" });
    } finally {
      await stack.dispose();
    }
  });
});

describe("a server that redirects in a loop", () => {
  it("is given up after 10 redirects with an error that says so, instead of a bare 302", async () => {
    let asked = 0;
    const loop = http.createServer((req, res) => {
      asked++;
      res.writeHead(302, { location: req.url === "/a" ? "/b" : "/a" }).end();
    });
    await new Promise<void>((resolve) => loop.listen(0, "127.0.0.1", resolve));
    const client = new HttpClient();
    try {
      const { port } = loop.address() as AddressInfo;
      const err = await client.open(`http://127.0.0.1:${port}/a`).catch((e: unknown) => e);
      expect(err).toMatchObject({ reason: "SOURCE_UNAVAILABLE", metadata: { host: `127.0.0.1:${port}` } });
      expect((err as Error).message).toMatch(/redirected more than 10 times .*a redirect loop/);
      expect(asked).toBe(11);
    } finally {
      await client.close();
      loop.close();
    }
  });
});
