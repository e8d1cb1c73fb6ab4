// One request's usage record: filled in as the request goes, written exactly once when it ends —
// at the answer, or when a relayed stream ends.
import type { Usage } from "../providers/types.ts";
import type { Outcome, UsageRecord, UsageSink } from "../usage/record.ts";

export class UsageRecording {
	readonly record: UsageRecord = {
		tenant: "",
		pool: "",
		model: "",
		priority: "",
		outcome: "rejected",
		cause: "",
		status: 0,
		promptTokens: 0,
		completionTokens: 0,
		queueMs: 0,
		upstreamMs: 0,
		attempts: 0,
		retriesAfterRateLimit: 0,
		retriesAfterFailure: 0,
		cachedInputTokens: 0,
		reasoningTokens: 0,
	};
	#streamEnd: Promise<void> | undefined;
	#written = false;
	#usage: Usage | undefined;
	readonly #onComplete: ((record: UsageRecord, usage: Usage | undefined) => Promise<void>)[] = [];

	readonly #sink: UsageSink;

	constructor(sink: UsageSink) {
		this.#sink = sink;
	}

	/** The request ended as `outcome` for `cause`, with the provider's reported usage if any. */
	end(outcome: Outcome, cause: string, usage?: Usage): void {
		this.record.outcome = outcome;
		this.record.cause = cause;
		this.#usage = usage;
		if (usage) {
			this.record.promptTokens = usage.inputTokens;
			this.record.completionTokens = usage.outputTokens;
			this.record.cachedInputTokens = usage.cachedInputTokens ?? 0;
			this.record.reasoningTokens = usage.reasoningTokens ?? 0;
		}
	}

	/** The answer is a stream: the record is complete only when `ended` settles. */
	endsWithStream(ended: Promise<void>): void {
		this.#streamEnd = ended;
	}

	/** Runs `callback` once the record is complete (after a relayed stream ends), with the usage. */
	whenComplete(callback: (record: UsageRecord, usage: Usage | undefined) => Promise<void>): void {
		this.#onComplete.push(callback);
	}

	/** Writes the record once: now, or when the relayed stream has ended. */
	write(status: number, waitUntil: (promise: Promise<unknown>) => void): void {
		if (this.#written) return;
		this.#written = true;
		if (this.record.status === 0) this.record.status = status;
		const complete = async () => {
			this.#sink.write(this.record);
			await Promise.all(this.#onComplete.map((callback) => callback(this.record, this.#usage)));
		};
		waitUntil(this.#streamEnd ? this.#streamEnd.then(complete) : complete());
	}
}
