/**
 * @module server/errors
 *
 * Errors as the OpenAI API reports them, `{"error": {"message", "type",
 * "param", "code"}}`, and the one place that maps everything thrown while
 * serving a request to an HTTP status (Hono's onError, server/app.ts). A
 * WgkvError is the user's fault (400); anything else is a bug: logged with
 * its stack on the server, a one-line 500 to the client.
 */
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { causeText, isUserError } from "../errors.js";

/** The body OpenAI sends with every error. */
export interface OpenAiErrorBody {
  readonly error: { readonly message: string; readonly type: string; readonly param: string | null; readonly code: string | null };
}

/** An error with its HTTP status and OpenAI fields, thrown by the handlers. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    readonly status: ContentfulStatusCode,
    message: string,
    readonly type: string = "invalid_request_error",
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** 400 for a bad field, naming it. */
export function badRequest(message: string, param: string | null = null, code: string | null = null): ApiError {
  return new ApiError(400, message, "invalid_request_error", param, code);
}

/**
 * The client hung up before its response: nobody reads what is sent, and it
 * is no bug. 499 is nginx's "client closed request", for the request count.
 */
export function clientGone(): ApiError {
  return new ApiError(499 as ContentfulStatusCode, "the client closed the connection", "invalid_request_error", null, "client_closed_request");
}

/** What the client gets for `err`: status, body and extra headers. */
export function toErrorResponse(err: unknown, log: (err: unknown) => void): { status: ContentfulStatusCode; body: OpenAiErrorBody; headers: Readonly<Record<string, string>> } {
  const body = (message: string, type: string, param: string | null = null, code: string | null = null): OpenAiErrorBody => ({ error: { message, type, param, code } });
  if (err instanceof ApiError) return { status: err.status, body: body(err.message, err.type, err.param, err.code), headers: err.headers };
  if (isUserError(err)) return { status: 400, body: body(causeText(err), "invalid_request_error"), headers: {} };
  if (err instanceof HTTPException) {
    // NOTE: Hono's own refusals carry their status; their text is ours to write
    const status = err.status as ContentfulStatusCode;
    const message = status === 413 ? "the request body is too large" : causeText(err) || `HTTP ${status}`;
    return { status, body: body(message, "invalid_request_error", null, status === 413 ? "request_too_large" : null), headers: {} };
  }
  log(err);
  return { status: 500, body: body("internal server error (logged on the server)", "server_error"), headers: {} };
}
