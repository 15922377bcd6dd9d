import { ApiError, type Api } from "../api.js";
import { byId } from "../dom.js";
import type { RegisterResponseJson } from "../types.js";
import { clearFieldError, showFieldError } from "./field-errors.js";

type Field = "repo" | "filename" | "display_name";

/** Where a registration error belongs when the API gives no `param`: by its stable code. */
const FIELD_BY_CODE: Record<string, Field> = {
  invalid_repo: "repo",
  repo_not_found: "repo",
  gated_repo: "repo",
  no_gguf_files: "repo",
  model_already_exists: "repo",
  file_not_found: "filename",
  invalid_filename: "filename",
};

/** The field an ApiError's `param` names ("repo", "filename", "display_name"; also "body.repo" forms). */
function fieldOf(err: ApiError): Field | null {
  const param = (err.param ?? "").split(".").pop() ?? "";
  if (param === "repo" || param === "filename" || param === "display_name") return param;
  if (param === "displayName") return "display_name";
  return err.code ? (FIELD_BY_CODE[err.code] ?? null) : null;
}

/**
 * "Register a model": a Hugging Face repo id or URL, optional file, display name and what the
 * model does (for embedding models and rerankers whose repo carries no tag). The API's 4xx
 * message is shown under the field it is about (its `param`, else the field its code implies).
 */
export class RegisterDialog {
  private readonly dialog = byId("register-dialog", HTMLDialogElement);
  private readonly form = byId("register-form", HTMLFormElement);
  private readonly inputs: Record<Field, HTMLInputElement> = {
    repo: byId("reg-repo", HTMLInputElement),
    filename: byId("reg-filename", HTMLInputElement),
    display_name: byId("reg-display-name", HTMLInputElement),
  };
  /** Empty: as the repo's Hub tag says. */
  private readonly capability = byId("reg-capability", HTMLSelectElement);
  private readonly formError = byId("register-form-error", HTMLElement);
  private readonly submitButton = byId("register-submit", HTMLButtonElement);
  private busy = false;

  constructor(
    private readonly api: Api,
    private readonly done: (res: RegisterResponseJson) => void,
  ) {
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.submit();
    });
    byId("register-cancel", HTMLButtonElement).addEventListener("click", () => this.dialog.close());
    for (const input of Object.values(this.inputs)) input.addEventListener("input", () => clearFieldError(input));
  }

  open(): void {
    this.form.reset();
    this.clearErrors();
    this.setBusy(false);
    this.dialog.showModal();
    this.inputs.repo.focus();
  }

  private clearErrors(): void {
    for (const input of Object.values(this.inputs)) clearFieldError(input);
    this.formError.textContent = "";
    this.formError.hidden = true;
  }

  private async submit(): Promise<void> {
    if (this.busy) return;
    this.clearErrors();
    const repo = this.inputs.repo.value.trim();
    const filename = this.inputs.filename.value.trim();
    const displayName = this.inputs.display_name.value.trim();
    if (!repo) {
      showFieldError(this.inputs.repo, "Enter a Hugging Face repo id (org/name) or URL.");
      this.inputs.repo.focus();
      return;
    }
    this.setBusy(true);
    try {
      const capability = this.capability.value;
      const res = await this.api.register({
        repo,
        ...(filename ? { filename } : {}),
        ...(displayName ? { display_name: displayName } : {}),
        ...(capability ? { capabilities: [capability] } : {}),
      });
      this.dialog.close();
      this.done(res);
    } catch (err) {
      this.setBusy(false);
      // A 4xx is about what was asked: at its field, else at the repo (the one required input).
      const aboutInput = err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 401 && err.status !== 403;
      const field = aboutInput ? (fieldOf(err) ?? "repo") : null;
      const message = err instanceof ApiError ? err.message : `Could not reach the node: ${String(err)}`;
      if (field) {
        showFieldError(this.inputs[field], message);
        this.inputs[field].focus();
      } else {
        this.formError.textContent = message;
        this.formError.hidden = false;
        this.inputs.repo.focus();
      }
    }
  }

  private setBusy(busy: boolean): void {
    this.busy = busy;
    this.submitButton.disabled = busy;
    this.submitButton.textContent = busy ? "Registering…" : "Register";
    this.form.setAttribute("aria-busy", String(busy));
  }
}
