// The Worker's side of one Pool object: waiting for admission while the caller is there (a caller
// who leaves is taken off the queue), and riding out a restart of the object, which drops
// everything that was waiting in it.
import type {
	AcquireRequest,
	AcquireResult,
	AttemptAnswer,
	AttemptReport,
	Pool,
	ReportedLimits,
} from "../durable/pool.ts";

/**
 * An error from the Durable Object runtime rather than from the Pool's own code (those carry
 * `remote`): the object was reset, moved or aborted. Not an overload, which a retry would worsen.
 */
function isObjectRestart(error: unknown): boolean {
	const flags = error as { retryable?: unknown; overloaded?: unknown; remote?: unknown } | null;
	return flags?.overloaded !== true && (flags?.retryable === true || flags?.remote !== true);
}

export class PoolClient {
	/** Made at the first call: a request admitted from an allowance makes none. */
	#stubOrUndefined: DurableObjectStub<Pool> | undefined;

	readonly #namespace: DurableObjectNamespace<Pool>;
	readonly pool: string;

	constructor(namespace: DurableObjectNamespace<Pool>, pool: string) {
		this.#namespace = namespace;
		this.pool = pool;
	}

	get #stub(): DurableObjectStub<Pool> {
		this.#stubOrUndefined ??= this.#namespace.getByName(this.pool);
		return this.#stubOrUndefined;
	}

	/** Resolves when the Pool admits or rejects `ask`. */
	acquire(ask: AcquireRequest, signal: AbortSignal): Promise<AcquireResult> {
		// An acquire, or the re-acquire after a restart, never answers "final".
		return this.#whileCallerWaits(ask, signal, (stub) =>
			stub.acquire(ask),
		) as Promise<AcquireResult>;
	}

	/**
	 * A send did not succeed: the Pool ends its lease and answers with the next send's admission
	 * (after its backoff or pause), or with the end of the request.
	 */
	attemptEnded(
		ticketId: string,
		report: AttemptReport,
		next: AcquireRequest,
		signal: AbortSignal,
	): Promise<AttemptAnswer> {
		return this.#whileCallerWaits(next, signal, (stub) =>
			stub.attemptEnded(ticketId, report, next),
		);
	}

	/** The lease's holder is still at work; false when the lease was reclaimed already. */
	renew(ticketId: string): Promise<boolean> {
		return this.#stub.renew(ticketId);
	}

	/** Ends a lease; `reported` is the provider's rate-limit headers, from which the Pool learns. */
	release(
		ticketId: string,
		actualTokens: number | undefined,
		providerAnswered = false,
		reported?: ReportedLimits,
	): Promise<void> {
		return this.#stub.release(ticketId, actualTokens, providerAnswered, reported);
	}

	/**
	 * Waits on a call that may queue `ask`: a caller who leaves cancels it, and if the Pool object
	 * restarts meanwhile (a deploy, an eviction), asks once more on a fresh stub, with the time
	 * already waited so the request keeps its place by age.
	 */
	async #whileCallerWaits(
		ask: AcquireRequest,
		signal: AbortSignal,
		call: (stub: DurableObjectStub<Pool>) => Promise<AttemptAnswer>,
	): Promise<AttemptAnswer> {
		const startedMs = Date.now();
		try {
			return await this.#cancelledOnAbort(ask.ticketId, signal, () => call(this.#stub));
		} catch (error) {
			if (!isObjectRestart(error) || signal.aborted) throw error;
			this.#stubOrUndefined = this.#namespace.getByName(this.pool);
			const again: AcquireRequest = {
				...ask,
				ticketId: crypto.randomUUID(),
				priorWaitMs: (ask.priorWaitMs ?? 0) + Date.now() - startedMs,
			};
			return this.#cancelledOnAbort(again.ticketId, signal, () => this.#stub.acquire(again));
		}
	}

	async #cancelledOnAbort(
		ticketId: string,
		signal: AbortSignal,
		call: () => Promise<AttemptAnswer>,
	): Promise<AttemptAnswer> {
		const stub = this.#stub;
		const cancel = () => void stub.cancel(ticketId);
		signal.addEventListener("abort", cancel, { once: true });
		try {
			const answer = call();
			// Gone before it asked: the listener will never fire, so take the ticket back at once
			// (calls on one stub arrive in order, so the cancel finds it queued).
			if (signal.aborted) cancel();
			return await answer;
		} finally {
			signal.removeEventListener("abort", cancel);
		}
	}
}
