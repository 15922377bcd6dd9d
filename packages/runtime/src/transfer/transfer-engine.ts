import type { NodeConfig } from "../config/index.js";
import type { TransferProgress } from "../events/model-events.js";
import type { Logger } from "../logging/index.js";
import type { RemoteFile } from "../plugin/contract.js";
import fs from "node:fs/promises";
import { isLlmlbError } from "../errors/index.js";
import type { SharedReservations } from "../store/shared-reservations.js";
import { DiskReservations } from "./disk-reservations.js";
import { downloadFile, prepareFile, type DownloadedFile } from "./file-download.js";
import { LiveFile, LiveFiles } from "./live-files.js";
import type { HttpClient } from "./http-client.js";
import { ProgressTracker } from "./progress.js";

export interface TransferRequest {
  /** What is downloaded, for log lines ("model qwen2.5-0.5b"). */
  label: string;
  files: RemoteFile[];
  /** Where .part files live until the store installs them. */
  partialDir: string;
  /** Commit the files belong to (kept with the partial files). */
  revision?: string;
  /** A file whose size is not announced may not grow past this. */
  maxUnknownSizeBytes: number;
  signal: AbortSignal;
  onProgress: (progress: TransferProgress) => void;
}

export type TransferSettings = Pick<NodeConfig, "downloadConnections" | "downloadRetries" | "stallTimeoutSeconds" | "diskReserve">;

export interface TransferEngineOptions {
  http: HttpClient;
  settings: TransferSettings;
  logger: Logger;
  /** The reservations of the other processes on this home (without it, this process's only). */
  sharedReservations?: SharedReservations;
  /** First retry delay (ms); tests lower it. */
  retryBaseMs?: number;
  /** Longest Retry-After / rate-limit reset worth waiting for (ms). */
  maxRetryAfterMs?: number;
}

/**
 * The one transfer engine of the node. Sources only locate files; this downloads them with
 * resume, several ranged connections, retries, stall detection, streaming verification and a
 * disk-space check before the first byte, into partial files the store then installs atomically.
 */
export class TransferEngine {
  /** Shared by every transfer, so concurrent downloads cannot overrun LLMLB_DISK_RESERVE together. */
  private readonly disk: DiskReservations;
  /** How far each file being downloaded is verified, for readers that follow a download (the blob route). */
  readonly live = new LiveFiles();

  constructor(private readonly options: TransferEngineOptions) {
    this.disk = new DiskReservations(options.sharedReservations);
  }

  async download(request: TransferRequest): Promise<DownloadedFile[]> {
    const { settings, logger } = this.options;
    const prepared = await Promise.all(request.files.map((f) => prepareFile(f, request.partialDir, request.revision, logger.child({ file: f.name }))));
    const known = prepared.filter((p) => p.file.size !== undefined);
    const needed = known.reduce((n, p) => n + p.file.size! - p.resumedBytes, 0);
    const reservation = await this.disk.reserve(request.partialDir, needed, settings.diskReserve, request.label);

    const tracker = new ProgressTracker(
      request.label,
      {
        totalBytes: known.reduce((n, p) => n + p.file.size!, 0),
        completedBytes: prepared.reduce((n, p) => n + p.resumedBytes, 0),
      },
      logger,
      request.onProgress,
    );
    const resumed = prepared.reduce((n, p) => n + p.resumedBytes, 0);
    logger.info({ files: request.files.length, resumedBytes: resumed }, `downloading ${request.label}${resumed > 0 ? " (resuming)" : ""}`);

    const lastProgress = { at: Date.now() };
    const live = prepared.map((p) => new LiveFile(p.file.name, p.partPath, p.file.size ?? p.state.size, p.file.sha256, lastProgress));
    const unlist = this.live.add(request.partialDir, live);
    const results: DownloadedFile[] = [];
    try {
      for (const [i, file] of prepared.entries()) {
        request.signal.throwIfAborted();
        tracker.setFile(file.file.name);
        results.push(
          await downloadFile(file, {
            http: this.options.http,
            signal: request.signal,
            connections: settings.downloadConnections,
            retries: settings.downloadRetries,
            stallMs: settings.stallTimeoutSeconds * 1000,
            retryBaseMs: this.options.retryBaseMs ?? 300,
            maxRetryAfterMs: this.options.maxRetryAfterMs ?? 60_000,
            logger: logger.child({ file: file.file.name }),
            maxUnknownSizeBytes: request.maxUnknownSizeBytes,
            live: live[i]!,
            onBytes: (n) => {
              lastProgress.at = Date.now();
              reservation.consume(n);
              tracker.add(n);
            },
            onRestart: (reason) => tracker.restarted(`${file.file.name}: ${reason}`),
            onSizeLearned: async (size) => {
              await reservation.grow(size - file.resumedBytes, request.partialDir, settings.diskReserve, request.label);
              tracker.addTotal(size);
            },
          }),
        );
      }
      tracker.finish();
    } catch (err) {
      for (const file of live) file.fail(err as Error);
      // The disk filled up mid-transfer: give back what this transfer wrote rather than keep it for a resume.
      if (isLlmlbError(err, "INSUFFICIENT_DISK")) {
        await Promise.all(prepared.flatMap((p) => [fs.rm(p.partPath, { force: true }), fs.rm(p.statePath, { force: true })]));
        logger.warn({ partialDir: request.partialDir }, `the disk filled up while downloading ${request.label}; its partial files were removed`);
      }
      throw err;
    } finally {
      unlist();
      tracker.end();
      reservation.release();
    }
    return results;
  }
}
