// One send of a request to the provider, under the pool's time limits, with a typed outcome: the
// provider answered (2xx, body still to relay), refused (any other status, body read), did not
// answer, or the caller left first. It decides nothing: the Pool does, from the outcome's facts.
import type { PoolConfig } from "../config.ts";
import type { Provider, RateLimitInfo } from "../providers/types.ts";
import type { GatewayError } from "./errors.ts";
import { UpstreamDeadline } from "./upstream.ts";

export type SendOutcome =
	| {
			kind: "answered";
			response: Response;
			limits: RateLimitInfo;
			/** Still armed for the body: the caller re-arms it for a stream's idle limit or the total. */
			deadline: UpstreamDeadline;
			startedMs: number;
	  }
	| { kind: "refused"; status: number; headers: Headers; text: string; limits: RateLimitInfo }
	| { kind: "no_answer"; cause: "connection" | "timeout"; error: GatewayError }
	| { kind: "caller_gone"; error: GatewayError };

export async function sendOnce(
	url: URL,
	init: RequestInit,
	pool: PoolConfig,
	provider: Provider,
	callerSignal: AbortSignal,
	upstreamFetch: typeof fetch,
): Promise<SendOutcome> {
	const startedMs = Date.now();
	const deadline = new UpstreamDeadline(callerSignal, url);
	deadline.arm("first byte", pool.firstByteTimeoutMs);
	let response: Response;
	try {
		response = await upstreamFetch(url, { ...init, signal: deadline.signal });
	} catch (error) {
		deadline.disarm();
		const failure = deadline.failure(error);
		if (failure.reason === "cancelled") return { kind: "caller_gone", error: failure };
		return {
			kind: "no_answer",
			cause: failure.reason === "timeout" ? "timeout" : "connection",
			error: failure,
		};
	}
	const limits = provider.parseRateLimitHeaders(response.headers, Date.now());
	if (response.ok) return { kind: "answered", response, limits, deadline, startedMs };
	// An error answer is read whole (it is small), so that its send has ended before it is judged.
	deadline.arm("total", Math.max(0, pool.totalTimeoutMs - (Date.now() - startedMs)));
	try {
		const text = await response.text();
		return { kind: "refused", status: response.status, headers: response.headers, text, limits };
	} catch (error) {
		const failure = deadline.failure(error);
		if (failure.reason === "cancelled") return { kind: "caller_gone", error: failure };
		return { kind: "no_answer", cause: "connection", error: failure };
	} finally {
		deadline.disarm();
	}
}
