const SECRET_QUERY_PARAMS = /([?&](?:token|access_token|api_key|apikey|key|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&#\s"']+/gi;
const BEARER = /\b(Bearer|token)\s+[A-Za-z0-9._~+/=-]{6,}/g;
const URL_CREDENTIALS = /(\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@"']+:)[^@\s/"']+@/gi;

/** Masks known secret values, bearer credentials and secret-looking query parameters in text. */
export function createRedactor(secrets: readonly string[]) {
  const known = secrets.filter((s) => s.length >= 4).sort((a, b) => b.length - a.length);
  return (text: string): string => {
    let out = text;
    for (const secret of known) out = out.split(secret).join("***");
    return out.replace(SECRET_QUERY_PARAMS, "$1***").replace(BEARER, "$1 ***").replace(URL_CREDENTIALS, "$1***@");
  };
}

/** Applies a string redactor to every string inside a plain value (objects, arrays), up to a depth. */
export function redactDeep(value: unknown, redact: (s: string) => string, depth = 4): unknown {
  if (typeof value === "string") return redact(value);
  if (depth <= 0 || value === null || typeof value !== "object") return value;
  if (value instanceof Error) {
    return { type: value.name, message: redact(value.message), stack: value.stack ? redact(value.stack) : undefined,
      code: (value as { code?: unknown }).code, reason: (value as { reason?: unknown }).reason };
  }
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, redact, depth - 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = /^(authorization|x-api-key|api[-_]?key|token|hf[-_]?token|github[-_]?token|password|cookie)$/i.test(k) && v
      ? "***"
      : redactDeep(v, redact, depth - 1);
  }
  return out;
}
