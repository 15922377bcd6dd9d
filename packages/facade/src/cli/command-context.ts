import type { Command } from "commander";
import { loadConfig, type NodeConfig } from "@llmlb/runtime";
import { connectToNode, type NodeConnection } from "./node-connection.js";
import { settingFlags, type GlobalFlags } from "./setting-flags.js";

export const configOf = (command: Command): NodeConfig =>
  loadConfig({ flags: settingFlags(command.optsWithGlobals<GlobalFlags>()) });

export const wantsJson = (command: Command): boolean => command.optsWithGlobals<{ json?: boolean }>().json === true;

/** Runs a command body with a connection to the node, closing it afterwards. */
export async function withNode<T>(command: Command, body: (connection: NodeConnection, config: NodeConfig) => Promise<T>): Promise<T> {
  const config = configOf(command);
  const connection = await connectToNode(config);
  try {
    return await body(connection, config);
  } finally {
    await connection.close();
  }
}
