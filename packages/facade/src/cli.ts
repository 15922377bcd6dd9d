#!/usr/bin/env node
import { runCli } from "./cli/program.js";

const code = await runCli(process.argv);
if (code !== 0) process.exitCode = code;
