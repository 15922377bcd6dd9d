import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig, redactConfig, SETTINGS } from "../src/index.js";

const dirs: string[] = [];
function home(config?: unknown): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "llmlb-config-"));
  dirs.push(dir);
  if (config !== undefined) fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config));
  return dir;
}
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe("loadConfig", () => {
  it("takes flag over environment over config file over default, and says where each came from", () => {
    const dir = home({ grpcPort: 7001, httpPort: 7002, parallelism: 3 });
    const env = { LLMLB_HOME: dir, LLMLB_GRPC_PORT: "8001", LLMLB_HTTP_PORT: "8002" };
    const config = loadConfig({ env, flags: { grpcPort: "9001" } });
    expect(config.grpcPort).toBe(9001);
    expect(config.httpPort).toBe(8002);
    expect(config.parallelism).toBe(3);
    expect(config.queueSize).toBe(64);
    expect(config.origins.grpcPort).toEqual({ kind: "flag", name: "--grpc-port" });
    expect(config.origins.httpPort).toEqual({ kind: "env", name: "LLMLB_HTTP_PORT" });
    expect(config.origins.parallelism).toEqual({ kind: "file", name: path.join(dir, "config.json") });
    expect(config.origins.queueSize).toEqual({ kind: "default" });
  });

  it("defaults home to ~/.llmlb and the ports to 50051 and 8080", () => {
    const config = loadConfig({ env: {} });
    expect(config.home).toBe(path.join(os.homedir(), ".llmlb"));
    expect(config.grpcPort).toBe(50051);
    expect(config.httpPort).toBe(8080);
    expect(config.host).toBe("127.0.0.1");
    expect(config.gpu).toBe("auto");
  });

  it("honours HF_ENDPOINT, then MODEL_ENDPOINT, and splits LLMLB_ROUTER_URL", () => {
    const dir = home();
    expect(loadConfig({ env: { LLMLB_HOME: dir, MODEL_ENDPOINT: "http://mirror.local/" } }).hfEndpoint).toBe("http://mirror.local");
    expect(loadConfig({ env: { LLMLB_HOME: dir, HF_ENDPOINT: "http://a.local", MODEL_ENDPOINT: "http://b.local" } }).hfEndpoint).toBe("http://a.local");
    expect(loadConfig({ env: { LLMLB_HOME: dir, LLMLB_ROUTER_URL: "http://r1:8080, http://r2:8080/" } }).routerUrls).toEqual([
      "http://r1:8080", "http://r2:8080",
    ]);
  });

  it("parses sizes with units", () => {
    const config = loadConfig({ env: { LLMLB_HOME: home(), LLMLB_MEMORY_BUDGET: "8GiB", LLMLB_DISK_RESERVE: "500MB" } });
    expect(config.memoryBudget).toBe(8 * 1024 ** 3);
    expect(config.diskReserve).toBe(500e6);
  });

  it("reads keep-alive durations and context sizes", () => {
    const dir = home();
    const keepAlive = (value: string) => loadConfig({ env: { LLMLB_HOME: dir, LLMLB_KEEP_ALIVE: value } }).keepAlive;
    expect(loadConfig({ env: { LLMLB_HOME: dir } }).keepAlive).toBe(300_000);
    expect([keepAlive("30s"), keepAlive("1h30m"), keepAlive("250ms"), keepAlive("90"), keepAlive("0"), keepAlive("-1")]).toEqual([
      30_000, 5_400_000, 250, 90_000, 0, -1,
    ]);
    // Longer than any Node.js timer can wait (~24.8 days, which would fire after 1 ms): forever.
    expect([keepAlive("596h"), keepAlive("597h"), keepAlive("1000000000000"), keepAlive("-5m")]).toEqual([2_145_600_000, -1, -1, -1]);
    // A negative zero is at once (Ollama reads "-0" so); a negative with a bad unit is an error, not forever.
    expect([keepAlive("-0"), keepAlive("-0s"), keepAlive("-0.0"), keepAlive("-1h30m")]).toEqual([0, 0, 0, -1]);
    expect(Object.is(keepAlive("-0"), 0)).toBe(true);
    expect(() => keepAlive("-5parsecs")).toThrow(/LLMLB_KEEP_ALIVE = "-5parsecs"/);
    expect(() => keepAlive("--5")).toThrow(/LLMLB_KEEP_ALIVE = "--5"/);
    expect(() => keepAlive("soon")).toThrow(/LLMLB_KEEP_ALIVE = "soon": expected a duration such as "5m"/);
    expect(() => keepAlive("5m later")).toThrow(/LLMLB_KEEP_ALIVE/);
    const contextSize = (value: string) => loadConfig({ env: { LLMLB_HOME: dir, LLMLB_CONTEXT_SIZE: value } }).contextSize;
    expect(loadConfig({ env: { LLMLB_HOME: dir } }).contextSize).toBe(0);
    expect([contextSize("auto"), contextSize("AUTO"), contextSize("16384")]).toEqual([0, 0, 16_384]);
    expect(() => contextSize("big")).toThrow(/LLMLB_CONTEXT_SIZE = "big": expected "auto" \(or 0\) or a number of tokens/);
    // A context shorter than a registration may have (256) would refuse every chat; 0 still means auto.
    expect([contextSize("0"), contextSize("256")]).toEqual([0, 256]);
    expect(() => contextSize("12")).toThrow(/LLMLB_CONTEXT_SIZE = "12": expected "auto" \(or 0\) or a number of tokens from 256 to 16777216/);
  });

  it("names the variable, the value and what was expected when a value is bad", () => {
    expect(() => loadConfig({ env: { LLMLB_HOME: home(), LLMLB_GRPC_PORT: "eighty" } })).toThrow(
      'invalid environment variable LLMLB_GRPC_PORT = "eighty": expected a whole number from 0 to 65535',
    );
    expect(() => loadConfig({ env: { LLMLB_HOME: home(), LLMLB_GPU: "tpu" } })).toThrow(/LLMLB_GPU.*expected one of auto, cuda, metal, vulkan, cpu/);
    expect(() => loadConfig({ env: { LLMLB_HOME: home({ grpcPort: -1 }) } })).toThrow(/"grpcPort" in .*config\.json = -1/);
    // A URL with a password: refused (fetch never takes one, and errors naming the address would carry it), and not echoed.
    const withPassword = () => loadConfig({ env: { LLMLB_HOME: home(), LLMLB_ROUTER_URL: "http://rtuser:rtpass-SECRET@127.0.0.1:9" } });
    expect(withPassword).toThrow(/^invalid environment variable LLMLB_ROUTER_URL = "http:\/\/rtuser:\*\*\*@127\.0\.0\.1:9": item 1: expected a URL without a user name or password/);
    expect(withPassword).not.toThrow(/rtpass/);
    expect(() => loadConfig({ env: { LLMLB_HOME: home(), LLMLB_GRPC_PORT: "9000", LLMLB_HTTP_PORT: "9000" } })).toThrow(
      "the gRPC and HTTP listeners are both set to port 9000 (environment variable LLMLB_GRPC_PORT, environment variable LLMLB_HTTP_PORT): give one of them another port",
    );
  });

  it("takes a CPU list for the inference runner only if this node may use those CPUs, and says why not otherwise", () => {
    const cpus = (value: string) => loadConfig({ env: { LLMLB_HOME: home(), LLMLB_RUNNER_CPUS: value } }).runnerCpus;
    expect(cpus("")).toBe("");
    expect(cpus(" 0 ")).toBe("0");
    expect(cpus("0,0-0")).toBe("0");
    expect(() => cpus("1-0")).toThrow(/LLMLB_RUNNER_CPUS = "1-0": the range 1-0 ends before it starts/);
    expect(() => cpus("one")).toThrow(/LLMLB_RUNNER_CPUS = "one": expected CPU numbers and ranges such as 1 or 1-3/);
    expect(() => cpus("0-4000000000")).toThrow(/LLMLB_RUNNER_CPUS = "0-4000000000": CPU 4000000000 is beyond the 8192 CPUs Linux can number/);
    expect(() => cpus("4095")).toThrow(/LLMLB_RUNNER_CPUS = "4095": CPU 4095 is not one this machine lets the node use \(0/);
    // Thousands of CPUs outside the machine read as ranges, not as a list of every number.
    const many = (() => {
      try {
        cpus("0-8191");
      } catch (err) {
        return (err as Error).message;
      }
    })();
    expect(many).toMatch(/CPU [\d,-]*\d+-8191 are not ones this machine lets the node use \([\d,-]+\)$/);
    expect(many!.length).toBeLessThan(300);
  });

  it("takes a redis:// or postgres:// LLMLB_STATE_URL and says which schemes it accepts otherwise, never echoing the URL", () => {
    expect(loadConfig({ env: { LLMLB_HOME: home(), LLMLB_STATE_URL: "redis://:pw@10.0.0.2:6379" } }).stateUrl).toBe("redis://:pw@10.0.0.2:6379");
    expect(loadConfig({ env: { LLMLB_HOME: home(), LLMLB_STATE_URL: "postgresql://u:pw@db/llmlb" } }).stateUrl).toBe("postgresql://u:pw@db/llmlb");
    expect(loadConfig({ env: { LLMLB_HOME: home() } }).stateUrl).toBe("");
    const bad = () => loadConfig({ env: { LLMLB_HOME: home(), LLMLB_STATE_URL: "mysql://u:secretpw@db/llmlb" } });
    expect(bad).toThrow(/LLMLB_STATE_URL.*expected redis:\/\/, rediss:\/\/, postgres:\/\/ or postgresql:\/\/, not mysql:\/\//);
    expect(bad).not.toThrow(/secretpw/);
    expect(() => loadConfig({ env: { LLMLB_HOME: home(), LLMLB_ADVERTISE_URL: "10.0.0.5:8080" } })).toThrow(/LLMLB_ADVERTISE_URL/);
  });

  it("rejects unknown fields and malformed sources in the config file, naming them", () => {
    expect(() => loadConfig({ env: { LLMLB_HOME: home({ grpcPrt: 1 }) } })).toThrow(/unknown field "grpcPrt"/);
    expect(() => loadConfig({ env: { LLMLB_HOME: home({ sources: [{ module: "my-s3", enabled: "yes" }] }) } })).toThrow(
      /source "my-s3" \/sources\/0\/enabled: must be boolean/,
    );
    expect(() => loadConfig({ env: { LLMLB_HOME: home("not json") } })).toThrow(/config file/);
  });

  it("fails when an explicitly named config file is missing, but not when the default one is", () => {
    expect(() => loadConfig({ env: { LLMLB_HOME: home(), LLMLB_CONFIG: "/nonexistent/llmlb.json" } })).toThrow(/cannot read config file \/nonexistent\/llmlb.json/);
    expect(loadConfig({ env: { LLMLB_HOME: home() } }).sources).toBeUndefined();
  });

  it("reads the source chain from the file", () => {
    const sources = [{ module: "@llmlb/plugins/local" }, { module: "./my-plugin.js", name: "nas", priority: 5, options: { root: "/mnt" } }];
    expect(loadConfig({ env: { LLMLB_HOME: home({ sources }) } }).sources).toEqual(sources);
  });

  it("reads the Hugging Face token saved by huggingface-cli when HF_TOKEN is not set", () => {
    const hfHome = home();
    fs.writeFileSync(path.join(hfHome, "token"), "hf_from_file\n");
    const saved = process.env.HF_HOME;
    process.env.HF_HOME = hfHome;
    try {
      const fromFile = loadConfig({ env: { LLMLB_HOME: home() } });
      expect(fromFile.hfToken).toBe("hf_from_file");
      // `llmlb-node config` names the file as the token's source.
      expect(fromFile.origins.hfToken).toEqual({ kind: "file", name: path.join(hfHome, "token") });
      expect(loadConfig({ env: { LLMLB_HOME: home(), HF_TOKEN: "hf_env" } }).hfToken).toBe("hf_env");
    } finally {
      if (saved === undefined) delete process.env.HF_HOME;
      else process.env.HF_HOME = saved;
    }
  });

  it("masks secrets when printed", () => {
    const config = loadConfig({ env: { LLMLB_HOME: home(), HF_TOKEN: "hf_abcdef123456", LLMLB_API_KEY: "k" } });
    const printed = JSON.stringify(redactConfig(config));
    expect(printed).not.toContain("hf_abcdef123456");
    expect(redactConfig(config).hfToken).toBe("***");
  });
});

describe("the README's configuration table", () => {
  it("documents every setting with its variables and flag", () => {
    const readme = fs.readFileSync(path.resolve(import.meta.dirname, "../../../README.md"), "utf8");
    for (const [key, def] of Object.entries(SETTINGS)) {
      const flag = `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      const row = `| ${def.env.map((e) => `\`${e}\``).join(", ")} | \`${flag}\` |`;
      expect(readme, key).toContain(row);
    }
  });
});
