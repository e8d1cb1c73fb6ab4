// The one exception type of the gateway, and the one place it becomes an HTTP response in the
// provider's own error shape.
import type { Provider } from "../providers/types.ts";

export class GatewayError extends Error {
	constructor(
		readonly status: number,
		message: string,
		/** Why, in a word or two, for the usage record (e.g. "queue_full", "bad_json"). */
		readonly reason: string,
		readonly retryAfterMs?: number,
	) {
		super(message);
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
	headers.set("content-type", "application/json");
	if (error.retryAfterMs !== undefined) {
		headers.set("retry-after", retryAfterSeconds(error.retryAfterMs));
		headers.set("retry-after-ms", String(Math.ceil(error.retryAfterMs)));
	}
	return new Response(JSON.stringify(provider.errorBody(error.status, error.message)), {
		status: error.status,
		headers,
	});
}
