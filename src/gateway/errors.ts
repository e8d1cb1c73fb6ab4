// The one exception type of the gateway, and the one place it becomes an HTTP response in the
// provider's own error shape.
import type { Provider } from "../providers/types.ts";

export interface GatewayErrorExtras {
	retryAfterMs?: number;
	/** Headers the answer carries too, e.g. the pool's rate-limit view. */
	headers?: Headers;
	/** Extra fields for the error object, e.g. a queue position; the SDKs ignore unknown fields. */
	details?: Record<string, unknown>;
}

export class GatewayError extends Error {
	readonly status: number;
	/** Why, in a word or two, for the usage record (e.g. "queue_full", "bad_json"). */
	readonly reason: string;
	readonly extras: GatewayErrorExtras;

	constructor(status: number, message: string, reason: string, extras: GatewayErrorExtras = {}) {
		super(message);
		this.status = status;
		this.reason = reason;
		this.extras = extras;
	}
}

/** retry-after in whole seconds, never rounding a wait down to nothing. */
export function retryAfterSeconds(retryAfterMs: number): string {
	return String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
}

export function errorResponse(
	provider: Provider,
	error: GatewayError,
	headers = new Headers(),
): Response {
	const { retryAfterMs, details } = error.extras;
	for (const [name, value] of error.extras.headers ?? []) headers.set(name, value);
	headers.set("content-type", "application/json");
	if (retryAfterMs !== undefined) {
		headers.set("retry-after", retryAfterSeconds(retryAfterMs));
		headers.set("retry-after-ms", String(Math.ceil(retryAfterMs)));
	}
	const body = provider.errorBody(error.status, error.message) as { error?: object };
	if (details && body.error) body.error = { ...body.error, ...details };
	return new Response(JSON.stringify(body), { status: error.status, headers });
}
