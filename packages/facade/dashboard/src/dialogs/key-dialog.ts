import { byId } from "../dom.js";
import { clearFieldError, showFieldError } from "./field-errors.js";

/**
 * The API-key dialog: resolves with the key the user typed, or null when they cancel (Escape works
 * as cancel). The key itself is stored by the Api (sessionStorage, this tab only).
 */
export function keyPrompt(): (reason: "missing" | "invalid") => Promise<string | null> {
  const dialog = byId("key-dialog", HTMLDialogElement);
  const form = byId("key-form", HTMLFormElement);
  const input = byId("api-key", HTMLInputElement);
  const intro = byId("key-intro", HTMLElement);
  const cancel = byId("key-cancel", HTMLButtonElement);

  return (reason) =>
    new Promise((resolve) => {
      input.value = "";
      clearFieldError(input);
      intro.textContent =
        reason === "invalid"
          ? "The node did not accept that API key. Enter the key it was started with (LLMLB_API_KEY)."
          : "This node requires an API key (LLMLB_API_KEY). It is kept only for this browser tab.";
      if (reason === "invalid") showFieldError(input, "Invalid API key.");
      const onSubmit = (event: SubmitEvent) => {
        event.preventDefault();
        const key = input.value.trim();
        if (!key) {
          showFieldError(input, "Enter the API key.");
          input.focus();
          return;
        }
        finish(key);
      };
      const onCancel = () => finish(null);
      // A close event queued by an earlier prompt can arrive after this one opened (input goes first).
      const onClose = () => {
        if (!dialog.open) finish(null);
      };
      let settled = false;
      function finish(key: string | null) {
        if (settled) return;
        settled = true;
        form.removeEventListener("submit", onSubmit);
        cancel.removeEventListener("click", onCancel);
        dialog.removeEventListener("close", onClose);
        if (dialog.open) dialog.close();
        resolve(key);
      }
      form.addEventListener("submit", onSubmit);
      cancel.addEventListener("click", onCancel);
      dialog.addEventListener("close", onClose);
      dialog.showModal();
      input.focus();
    });
}
