/**
 * Shows an error under a form field: the message goes into the field's error element (announced via
 * role="alert"), the input gets aria-invalid and points at the message with aria-describedby.
 */
export function showFieldError(input: HTMLInputElement, message: string): void {
  const error = errorElementOf(input);
  error.textContent = message;
  error.hidden = false;
  input.setAttribute("aria-invalid", "true");
}

export function clearFieldError(input: HTMLInputElement): void {
  const error = errorElementOf(input);
  error.textContent = "";
  error.hidden = true;
  input.removeAttribute("aria-invalid");
}

function errorElementOf(input: HTMLInputElement): HTMLElement {
  const error = document.getElementById(`${input.id}-error`);
  if (!error) throw new Error(`dashboard: #${input.id}-error is missing`);
  return error;
}
