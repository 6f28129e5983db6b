/**
 * @module server/auth
 *
 * The API key check: `Authorization: Bearer <key>`, compared in time that
 * does not depend on where the strings first differ.
 */
import { ApiError } from "./errors.js";

export function checkApiKey(header: string | undefined, apiKey: string): void {
  const match = header === undefined ? null : /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!match) throw new ApiError(401, "missing API key: send it as 'Authorization: Bearer <key>'", "invalid_request_error", null, "invalid_api_key");
  if (!sameText(match[1]!, apiKey)) throw new ApiError(401, "incorrect API key provided", "invalid_request_error", null, "invalid_api_key");
}

function sameText(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a.charCodeAt(i % Math.max(1, a.length)) || 0) ^ b.charCodeAt(i);
  return diff === 0;
}
