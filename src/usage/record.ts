// One usage record per request (admitted, rejected or failed) and the sinks it is written to.
// Analytics Engine schema (README "Usage analytics" documents it for SQL queries):
//   index1 = tenant
//   blob1 tenant, blob2 pool, blob3 model, blob4 outcome, blob5 priority ("background" for a
//   batch line), blob6 final cause
//   double1 status, double2 prompt tokens, double3 completion tokens, double4 queue ms,
//   double5 upstream ms, double6 resends (every cause: attempts − 1), double7 attempts,
//   double8 resends after a provider 429, double9 resends after a failure (5xx, 529, dropped
//   connection, timeout), double10 cached input tokens, double11 reasoning tokens
import type { Priority } from "../core/priority.ts";

export type Outcome =
	| "ok" // the provider answered and the answer reached the caller
	| "provider_error" // the provider answered with an error that was passed on
	| "rejected" // tollbooth answered without calling the provider (auth, validation, queue)
	| "cancelled" // the caller went away
	| "upstream_failed"; // the provider could not be reached, timed out, or broke a stream

export interface UsageRecord {
	tenant: string;
	pool: string;
	model: string;
	/** The request's class; "background" for a batch line (below every class). */
	priority: Priority | "background" | "";
	outcome: Outcome;
	/** Why the request ended as it did, e.g. "ok", "rate_limited", "queue_full", "timeout". */
	cause: string;
	status: number;
	promptTokens: number;
	completionTokens: number;
	queueMs: number;
	upstreamMs: number;
	/** Sends to the provider, counting the first (0 when it was never called). */
	attempts: number;
	/** Resends after the provider answered 429. */
	retriesAfterRateLimit: number;
	/** Resends after a failure: 5xx, 529, 408, 409, a dropped connection, no first byte in time. */
	retriesAfterFailure: number;
	/** Of promptTokens, those read from the provider's prompt cache. */
	cachedInputTokens: number;
	/** Of completionTokens, those spent on reasoning. */
	reasoningTokens: number;
}

export interface UsageSink {
	write(record: UsageRecord): void;
}

export class AnalyticsEngineSink implements UsageSink {
	readonly #dataset: AnalyticsEngineDataset;

	constructor(dataset: AnalyticsEngineDataset) {
		this.#dataset = dataset;
	}

	write(record: UsageRecord): void {
		this.#dataset.writeDataPoint({
			indexes: [record.tenant],
			blobs: [
				record.tenant,
				record.pool,
				record.model,
				record.outcome,
				record.priority,
				record.cause,
			],
			doubles: [
				record.status,
				record.promptTokens,
				record.completionTokens,
				record.queueMs,
				record.upstreamMs,
				Math.max(0, record.attempts - 1),
				record.attempts,
				record.retriesAfterRateLimit,
				record.retriesAfterFailure,
				record.cachedInputTokens,
				record.reasoningTokens,
			],
		});
	}
}
