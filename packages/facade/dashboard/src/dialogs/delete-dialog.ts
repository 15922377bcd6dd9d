import { ApiError, type Api } from "../api.js";
import { byId, h, replaceChildren } from "../dom.js";
import { formatBytes } from "../format.js";
import type { DeleteResponseJson, ModelJson } from "../types.js";

/**
 * "Delete model?" — confirms, calls DELETE /v0/models/:id and reports the result. Enter confirms
 * (the Delete button has focus), Escape or Cancel keeps the model. Errors (e.g. MODEL_IN_USE) stay in
 * the dialog.
 */
export class DeleteDialog {
  private readonly dialog = byId("delete-dialog", HTMLDialogElement);
  private readonly form = byId("delete-form", HTMLFormElement);
  private readonly body = byId("delete-body", HTMLElement);
  private readonly forgetRow = byId("delete-forget-row", HTMLElement);
  private readonly forget = byId("delete-forget", HTMLInputElement);
  private readonly error = byId("delete-error", HTMLElement);
  private readonly confirm = byId("delete-confirm", HTMLButtonElement);
  private model: ModelJson | null = null;
  private returnFocus: HTMLElement | null = null;

  constructor(
    private readonly api: Api,
    private readonly done: (model: ModelJson, res: DeleteResponseJson) => void,
    /** Where focus goes when the button that opened the dialog is gone (its row was deleted). */
    private readonly focusElsewhere: () => void,
  ) {
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.submit();
    });
    byId("delete-cancel", HTMLButtonElement).addEventListener("click", () => this.dialog.close());
    this.dialog.addEventListener("close", () => {
      // The close event is queued, and input goes first: after Escape and a quick reopen, the
      // first close arrives with the dialog open again, and must not forget the model shown now.
      if (this.dialog.open) return;
      this.model = null;
      if (this.returnFocus?.isConnected) this.returnFocus.focus();
      else this.focusElsewhere();
    });
  }

  open(model: ModelJson): void {
    this.model = model;
    this.returnFocus = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    const size = model.local?.size_on_disk_bytes ?? model.size_bytes;
    replaceChildren(
      this.body,
      "Remove ",
      h("strong", { text: model.display_name || model.id }),
      " from this node’s disk? This frees ",
      h("strong", { text: formatBytes(size) }),
      ". You can pull it again later.",
    );
    this.forgetRow.hidden = model.origin !== "registered";
    this.forget.checked = false;
    this.error.textContent = "";
    this.error.hidden = true;
    this.setBusy(false);
    this.dialog.showModal();
    this.confirm.focus();
  }

  private async submit(): Promise<void> {
    const model = this.model;
    if (!model) return;
    this.setBusy(true);
    try {
      const res = await this.api.deleteModel(model.id, !this.forgetRow.hidden && this.forget.checked);
      this.dialog.close();
      this.done(model, res);
    } catch (err) {
      this.error.textContent = err instanceof ApiError ? err.message : `Could not delete: ${String(err)}`;
      this.error.hidden = false;
      this.setBusy(false);
      this.confirm.focus();
    }
  }

  private setBusy(busy: boolean): void {
    this.confirm.disabled = busy;
    this.confirm.textContent = busy ? "Deleting…" : "Delete";
  }
}
