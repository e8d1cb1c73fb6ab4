// One admitted batch line sent once: the pool's lease ended with what the provider said, the
// tenant's budget settled, one usage data point written, and what should become of the line.
import type { PoolConfig } from "../config.ts";
import type { LineResult } from "../durable/batch.ts";
import type { AcquireRequest, AttemptReport } from "../durable/pool.ts";
import { parseJson } from "../providers/estimate.ts";
import type { Provider } from "../providers/types.ts";
import type { LineCharge } from "./batch-line-budget.ts";
import type { PoolClient } from "./pool-client.ts";
import { sendOnce } from "./send.ts";
import { scrubSecrets, upstreamRequestHeaders, upstreamUrl } from "./upstream.ts";
import type { UsageRecording } from "./usage-recording.ts";

/** What becomes of a delivered line. */
export type LineEnd =
	/** Its result is final: recorded once, the message acked. */
	| { kind: "result"; result: LineResult }
	/** A failure a later send may cure: tried again through the queue, or dead-lettered. */
	| { kind: "failed"; why: string; retryAfterMs?: number }
	/** It did not run: back into the queue as a new message, spending none of its attempts. */
	| { kind: "deferred"; retryAfterMs: number }
	/** Nothing more to do: answered already, or its batch has stopped. */
	| { kind: "done" };

export interface AdmittedLine {
	path: string;
	body: Record<string, unknown>;
	pool: PoolConfig;
	provider: Provider;
	apiKey: string;
	ask: AcquireRequest;
	client: PoolClient;
	charge: Extract<LineCharge, { kind: "charged" }>;
	usage: UsageRecording;
}

/** A caller that never leaves: a line is nobody's open connection. */
export const staying = new AbortController().signal;
/** A caller already gone: after a failed send the line does not wait for the pool's backoff. */
const leaving = AbortSignal.abort();

/** Sends an admitted line once; ends its lease, settles its charge and notes its usage. */
export async function sendAdmittedLine(
	line: AdmittedLine,
	upstreamFetch: typeof fetch,
): Promise<LineEnd> {
	const { path, body, pool, provider, apiKey, ask, client, charge, usage } = line;
	const startedMs = Date.now();
	usage.record.attempts = 1;
	const sent = await sendOnce(
		upstreamUrl(pool.baseUrl, path, ""),
		{
			method: "POST",
			headers: upstreamRequestHeaders(
				new Headers({ "content-type": "application/json" }),
				provider,
				apiKey,
				pool,
			),
			body: JSON.stringify(body),
		},
		pool,
		provider,
		staying,
		upstreamFetch,
	);
	const took = () => {
		usage.record.upstreamMs = Date.now() - startedMs;
	};
	if (sent.kind === "answered") {
		let text: string;
		try {
			text = await sent.response.text();
		} catch {
			took();
			await client.release(ask.ticketId, undefined);
			await charge.settle({ kind: "unknown" });
			usage.end("upstream_failed", "stream_broken");
			usage.record.status = 502;
			return { kind: "failed", why: "The provider's answer broke off." };
		} finally {
			sent.deadline.disarm();
		}
		took();
		const answer = parseJson(text);
		const used = provider.usageFromJson(path, answer);
		await client.release(
			ask.ticketId,
			used && used.inputTokens + used.outputTokens,
			true,
			sent.limits,
		);
		await charge.settle(used ? { kind: "reported", usage: used } : { kind: "unknown" });
		usage.end("ok", "ok", used);
		usage.record.status = sent.response.status;
		const requestId = requestIdOf(sent.response.headers);
		return {
			kind: "result",
			result: { kind: "answered", statusCode: sent.response.status, requestId, body: answer },
		};
	}
	took();
	if (sent.kind === "caller_gone" || sent.kind === "no_answer") {
		// The provider may have worked on it: the pool keeps its reservation, the budget its estimate.
		await client.release(ask.ticketId, undefined);
		await charge.settle({ kind: "unknown" });
		usage.end("upstream_failed", sent.kind === "no_answer" ? sent.cause : "cancelled");
		usage.record.status = sent.error.status;
		return { kind: "failed", why: sent.error.message };
	}
	// An error answer: the provider did no billable work.
	await charge.settle({ kind: "nothing_sent" });
	usage.record.status = sent.status;
	if (sent.status === 429) {
		usage.end("provider_error", "provider_rate_limited");
		// The Pool judges a 429 as any other: the whole pool pauses. The line leaves at once and
		// comes back through the queue instead of waiting in the pool.
		const report: AttemptReport = {
			status: 429,
			reported: sent.limits,
			retryAfterMs: sent.limits.retryAfterMs,
		};
		const answer = await client.attemptEnded(ask.ticketId, report, ask, leaving);
		if (answer.kind === "admitted") await client.release(ask.ticketId, 0);
		return {
			kind: "failed",
			why: "The provider answered 429.",
			retryAfterMs: sent.limits.retryAfterMs,
		};
	}
	usage.end("provider_error", `provider_${sent.status}`);
	// Other failures end the lease without counting against the provider's health: a batch's bad
	// lines must not open the circuit breaker on interactive traffic (measured: they did). Its
	// retries are the queue's, bounded by the line's attempts.
	await client.release(ask.ticketId, undefined, false, sent.limits);
	if (sent.status >= 500) {
		return {
			kind: "failed",
			why: `The provider answered ${sent.status}.`,
			retryAfterMs: sent.limits.retryAfterMs,
		};
	}
	// A request the provider refuses (400, 404…) would be refused again: its answer is the result.
	const refusal = parseJson(scrubSecrets(sent.text, apiKey)) ?? {
		error: { message: "unreadable answer" },
	};
	return {
		kind: "result",
		result: {
			kind: "answered",
			statusCode: sent.status,
			requestId: requestIdOf(sent.headers),
			body: refusal,
		},
	};
}

export function requestIdOf(headers: Headers): string {
	return (
		headers.get("x-request-id") ??
		headers.get("request-id") ??
		`req_${crypto.randomUUID().replaceAll("-", "")}`
	);
}
