// Keeps an admitted send's lease alive while its answer is still coming: a renewal every third of
// the lease's lifetime, riding on the stream's chunks when they come, on a timer when they do not.
// A renewal that finds its lease reclaimed stops renewing; the send carries on regardless.

export class LeaseRenewal {
	readonly #renew: () => Promise<boolean>;
	readonly #everyMs: number;
	readonly #waitUntil: (promise: Promise<unknown>) => void;
	#lastMs = Date.now();
	#timer: ReturnType<typeof setTimeout> | undefined;
	#stopped = false;

	/** `waitUntil` keeps a renewal in flight alive past the response (the request's executionCtx). */
	constructor(
		renew: () => Promise<boolean>,
		leaseTtlMs: number,
		waitUntil: (promise: Promise<unknown>) => void,
	) {
		this.#renew = renew;
		this.#everyMs = Math.max(1, Math.floor(leaseTtlMs / 3));
		this.#waitUntil = waitUntil;
		this.#arm();
	}

	/** Traffic on the send (a chunk): renews if a third of the lifetime has passed since the last. */
	touch(): void {
		if (!this.#stopped && Date.now() - this.#lastMs >= this.#everyMs) this.#renewNow();
	}

	/** The lease ends (released, or the send is over): no more renewals. */
	stop(): void {
		this.#stopped = true;
		clearTimeout(this.#timer);
	}

	#arm(): void {
		clearTimeout(this.#timer);
		this.#timer = setTimeout(() => this.#renewNow(), this.#everyMs);
	}

	#renewNow(): void {
		if (this.#stopped) return;
		this.#lastMs = Date.now();
		this.#arm();
		this.#waitUntil(
			this.#renew().then(
				(alive) => {
					if (!alive) this.stop();
				},
				() => {}, // the next renewal tries again
			),
		);
	}
}
