/**
 * The Hugging Face stand-in of bench/download.bench.ts, in its own process so that serving the
 * file does not share a thread with what is measured. Prints {"url"} once ready; exits on SIGTERM.
 *   node --conditions=source --import tsx bench/download-standin.ts <file> <sha256>
 */
import { startHfStandin } from "../testkit/standins/index.js";

const [file, sha256] = process.argv.slice(2) as [string, string];
const hf = await startHfStandin();
await hf.addRepo("bench/download-GGUF", { files: { "bench.gguf": { path: file, sha256, lfs: true } } });
process.stdout.write(`${JSON.stringify({ url: hf.url })}\n`);
process.on("SIGTERM", () => void hf.close().then(() => process.exit(0)));
