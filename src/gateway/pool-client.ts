// The Worker's side of one Pool object: waiting for admission while the caller is there, and
// riding out a restart of the object, which drops everything that was waiting in it.

import type { Failure } from "../core/backoff.ts";
import type { RetryDecision } from "../core/provider-health.ts";
import type { AcquireRequest, AcquireResult, Pool } from "../durable/pool.ts";
import type { RateLimitInfo } from "../providers/types.ts";

/**
 * An error from the Durable Object runtime rather than from the Pool's own code (those carry
 * `remote`): the object was reset, moved or aborted. Not an overload, which a retry would worsen.
 */
function isObjectRestart(error: unknown): boolean {
	const flags = error as { retryable?: unknown; overloaded?: unknown; remote?: unknown } | null;
	return flags?.overloaded !== true && (flags?.retryable === true || flags?.remote !== true);
}

export class PoolClient {
	#stub: DurableObjectStub<Pool>;

	constructor(
		private readonly namespace: DurableObjectNamespace<Pool>,
		readonly pool: string,
	) {
		this.#stub = namespace.getByName(pool);
	}

	/** Resolves when the Pool admits or rejects `ask`; a caller that leaves is taken off the queue. */
	acquire(ask: AcquireRequest, signal: AbortSignal): Promise<AcquireResult> {
		return this.#waitSurvivingRestart(ask, signal, (stub, request) => stub.acquire(request));
	}

	/** The provider answered `previousTicketId` with 429: pause the pool, then admit `ask` first. */
	rateLimited(
		previousTicketId: string,
		ask: AcquireRequest,
		retryAfterMs: number,
		reported: RateLimitInfo | undefined,
		signal: AbortSignal,
	) {
		return this.#waitSurvivingRestart(ask, signal, (stub, request) =>
			request === ask
				? stub.rateLimited(previousTicketId, ask, retryAfterMs, reported)
				: stub.acquire(request),
		);
	}

	/** Ends a lease; `reported` is the provider's rate-limit headers, from which the Pool learns. */
	release(
		ticketId: string,
		actualTokens: number | undefined,
		providerAnswered = false,
		reported?: RateLimitInfo,
	) {
		return this.#stub.release(this.pool, ticketId, actualTokens, providerAnswered, reported);
	}

	/** A send failed at the provider: the Pool ends its lease and says whether to send again. */
	failed(
		ticketId: string,
		failure: Failure,
		attempt: number,
		maxAttempts: number,
		retryAfterMs: number | undefined,
	): Promise<RetryDecision> {
		return this.#stub.failed(this.pool, ticketId, failure, attempt, maxAttempts, retryAfterMs);
	}

	/**
	 * A waiter's call fails when its Pool object restarts (a deploy, an eviction): ask once more
	 * on a fresh stub, with the time already waited so the request keeps its place by age.
	 */
	async #waitSurvivingRestart(
		ask: AcquireRequest,
		signal: AbortSignal,
		call: (stub: DurableObjectStub<Pool>, request: AcquireRequest) => Promise<AcquireResult>,
	): Promise<AcquireResult> {
		const startedMs = Date.now();
		try {
			return await this.#whileCallerWaits(ask, signal, () => call(this.#stub, ask));
		} catch (error) {
			if (!isObjectRestart(error) || signal.aborted) throw error;
			this.#stub = this.namespace.getByName(this.pool);
			const again: AcquireRequest = {
				...ask,
				ticketId: crypto.randomUUID(),
				priorWaitMs: (ask.priorWaitMs ?? 0) + Date.now() - startedMs,
			};
			return this.#whileCallerWaits(again, signal, () => call(this.#stub, again));
		}
	}

	async #whileCallerWaits(
		ask: AcquireRequest,
		signal: AbortSignal,
		call: () => Promise<AcquireResult>,
	): Promise<AcquireResult> {
		const stub = this.#stub;
		const cancel = () => void stub.cancel(this.pool, ask.ticketId);
		signal.addEventListener("abort", cancel, { once: true });
		try {
			return await call();
		} finally {
			signal.removeEventListener("abort", cancel);
		}
	}
}
