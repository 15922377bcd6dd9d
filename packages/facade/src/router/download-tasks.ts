import { randomUUID } from "node:crypto";
import { LlmlbError } from "@llmlb/runtime";
import { ModelState, type Model } from "@llmlb/runtime/gen/llmlb/node/v1/model_pb";
import type { NodeClients } from "../clients.js";
import { assertPullable, type PullRegistry } from "../http/v0/pull-registry.js";
import { allModels } from "./node-facts.js";

interface Task {
  model: string;
  /** Resolves to whether the model is now on disk. */
  outcome: boolean | undefined;
}

const MAX_TASKS = 1000;

/**
 * Downloads a pull-era router asks for (`POST /api/models/download {repo, filename?}`): the repo
 * (and file) is matched against the catalog, registered when unknown, and pulled; the task id
 * answers `GET /api/download/progress`.
 */
export class DownloadTasks {
  private readonly tasks = new Map<string, Task>();

  constructor(
    private readonly clients: NodeClients,
    private readonly pulls: PullRegistry,
  ) {}

  async start(repo: string, filename: string | undefined): Promise<{ taskId: string; model: string }> {
    const model = (await this.known(repo, filename)) ?? (await this.register(repo, filename));
    assertPullable(model);
    const taskId = randomUUID();
    const task: Task = { model: model.id, outcome: undefined };
    this.tasks.set(taskId, task);
    if (this.tasks.size > MAX_TASKS) this.tasks.delete(this.tasks.keys().next().value!);
    void this.pulls.start(model.id).done.then((ok) => (task.outcome = ok));
    return { taskId, model: model.id };
  }

  /** undefined for an unknown task id. */
  async progress(taskId: string) {
    const task = this.tasks.get(taskId);
    if (!task) return undefined;
    const { model } = await this.clients.catalog.getModel({ modelId: task.model });
    const state = model?.state;
    const ready = state === ModelState.READY || state === ModelState.LOADED;
    const status = ready ? "completed" : task.outcome === false || state === ModelState.FAILED ? "failed" : state === ModelState.DOWNLOADING ? "downloading" : "pending";
    const p = state === ModelState.DOWNLOADING ? model?.progress : undefined;
    return {
      task_id: taskId,
      model: task.model,
      status,
      // llmlb's client type for this answer documents 0.0–100.0.
      progress: ready ? 100 : Math.round((p?.fraction ?? 0) * 1000) / 10,
      downloaded_bytes: Number(p?.completedBytes ?? (ready ? model?.sizeBytes ?? 0n : 0n)),
      total_bytes: Number(p?.totalBytes ?? model?.sizeBytes ?? 0n),
      error: status === "failed" ? model?.failureReason || "the download failed" : null,
    };
  }

  private async known(repo: string, filename: string | undefined): Promise<Model | undefined> {
    const wanted = repo.toLowerCase();
    return (await allModels(this.clients)).find(
      (m) => m.repo.toLowerCase() === wanted && (filename === undefined || m.files.includes(filename)) && m.state !== ModelState.UNSUPPORTED,
    );
  }

  private async register(repo: string, filename: string | undefined): Promise<Model> {
    const { model } = await this.clients.catalog.registerModel({ repo, filename: filename ?? "" });
    if (!model) throw new LlmlbError("INTERNAL", `registering ${repo} returned no model`);
    return model;
  }
}
