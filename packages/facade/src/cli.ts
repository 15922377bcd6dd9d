#!/usr/bin/env node
import { runCli } from "./cli/program.js";

// `llmlb-node ls | head` closes stdout early; that is not an error.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(0);
  throw err;
});

const code = await runCli(process.argv);
if (code !== 0) process.exitCode = code;
