import type { Command } from "commander";
import { loadConfig } from "@llmlb/runtime";
import { loggerFor, startFacade, startNode } from "../start-node.js";
import { settingFlags, type GlobalFlags } from "./setting-flags.js";

/**
 * `llmlb-node serve`: runs the node until SIGINT/SIGTERM, then drains in-flight calls and exits 0.
 * SIGHUP re-reads the API keys file and the TLS certificate without dropping connections.
 */
export function registerServeCommand(program: Command): void {
  program
    .command("serve")
    .description("serve gRPC (h2c) and HTTP (Connect, /v0, /v1, dashboard) in one process")
    .addHelpText("after", "\nExample:\n  llmlb-node serve --home /srv/llmlb --host 0.0.0.0 --http-port 8080 --grpc-port 50051\n")
    .action(async (_opts, command: Command) => {
      const config = loadConfig({ flags: settingFlags(command.optsWithGlobals<GlobalFlags>()) });
      const logger = loggerFor(config);
      // A promise rejected where nothing listens (a source plugin's call left unawaited, or a bug) is
      // logged: Node's default would end the process, and with it every request and download.
      process.on("unhandledRejection", (reason) => {
        logger.error({ err: reason }, "a promise was rejected and nothing handled it (a source plugin's call left unawaited, or a bug); the node keeps serving");
      });
      const node = config.runtimeUrl ? await startFacade(config, logger) : await startNode(config, logger);
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) {
          logger.warn({ signal }, "second signal: exiting now");
          process.exit(1);
        }
        stopping = true;
        logger.info({ signal }, "draining in-flight calls");
        node.close().then(
          () => {
            logger.info("stopped");
            logger.flush?.();
            process.exit(0);
          },
          (err: unknown) => {
            logger.error({ err }, "error while stopping");
            process.exit(1);
          },
        );
      };
      process.on("SIGINT", () => stop("SIGINT"));
      process.on("SIGTERM", () => stop("SIGTERM"));
      process.on("SIGHUP", () => node.reload());
      logger.info({ pid: process.pid }, "serving: SIGTERM or SIGINT to this pid drains and stops the node, SIGHUP re-reads the API keys and TLS files");
    });
}
