/** A string option, or `fallback` when it is missing or empty. */
export function stringOption(options: Readonly<Record<string, unknown>>, key: string, fallback = ""): string {
  const value = options[key];
  return typeof value === "string" && value !== "" ? value : fallback;
}

/** A list of non-empty strings, or undefined when the option is not a list. */
export function stringListOption(options: Readonly<Record<string, unknown>>, key: string): string[] | undefined {
  const value = options[key];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string" && v !== "") : undefined;
}
