// One Worker isolate's allowances from one Pool, and when its batches go: what it spends with no
// round trip, when it asks for more (early enough that a grant arrives, a round trip later, before
// the last one runs dry), and what each batch carries. Pure: the caller sends the batches.
import { AllowanceWallet, type Spend } from "./allowance-wallet.ts";
import {
	type AllowanceAnswer,
	type AllowanceBatch,
	type AllowanceScope,
	type EndedSpend,
	POOL_DIMENSIONS,
	type PoolDimension,
} from "./pool-allowances.ts";

/** An ask for a grant waits this long for others to share its call... */
export const ASK_DELAY_MS = 5;
/**
 * ...a grant whose window is over gives back what is left within this long...
 */
export const RETURN_WITHIN_MS = 20;
/**
 * ...and ended requests wait this long, unless a batch goes sooner: they are not urgent (what they
 * spent was reserved at the grant; their usage only corrects the estimate), so at any rate they
 * cost the Pool at most one call per this many ms.
 */
export const REPORT_EVERY_MS = 100;
/** The least an ask asks for: a few requests, so that a slow isolate does not ask for every one. */
const LEAST_REQUESTS = 4;
/** After the Pool granted nothing (it queues, or is near its limits), no ask for this long. */
const ASK_AGAIN_AFTER_MS = 250;
/** Weight of the latest batch's round trip in the running mean of a batch's round trip. */
const ROUND_TRIP_WEIGHT = 0.2;

export class PoolAllowanceHolder {
	readonly holder: string;
	readonly #wallet: AllowanceWallet<PoolDimension, AllowanceScope>;
	#ended: EndedSpend[] = [];
	/** When the oldest ended request or renewal not yet reported came. */
	#reportSinceMs: number | undefined;
	readonly #asks = new Map<string, AllowanceBatch["asks"][number]>();
	/** Scopes with an ask sent and not yet answered: no second ask for them until it is. */
	readonly #asking = new Set<string>();
	#askAgainAtMs = 0;
	/** A batch's round trip to the Pool, on average: a grant is asked for this much earlier. */
	#roundTripMs = 0;

	constructor(holder: string, spendWindowMs: number) {
		this.holder = holder;
		this.#wallet = new AllowanceWallet({
			dimensions: POOL_DIMENSIONS,
			reusable: ["slots"],
			counted: "requests",
			scopeKey,
			windowMs: spendWindowMs,
		});
	}

	/**
	 * Spends one request of `tokens` for `scope` from an allowance, or undefined (then the caller
	 * asks the Pool as usual). Either way, queues an ask for the next batch when allowances run low.
	 */
	admit(scope: AllowanceScope, tokens: number, nowMs: number): Spend<PoolDimension> | undefined {
		const spend = this.#wallet.spend(scope, { requests: 1, tokens, slots: 1 }, nowMs);
		const key = scopeKey(scope);
		if (!this.#asking.has(key) && nowMs >= this.#askAgainAtMs) {
			const least = { requests: LEAST_REQUESTS, tokens: LEAST_REQUESTS * tokens, slots: 1 };
			// A grant must arrive before the open ones end: ask when they have less than this left.
			const leadMs = 2 * this.#roundTripMs + RETURN_WITHIN_MS + ASK_DELAY_MS;
			const want = this.#wallet.want(scope, least, nowMs, leadMs);
			if (want) {
				// Replaces an ask not yet sent: the latest use says best what is needed.
				this.#asks.set(key, { scope, want });
			}
		}
		return spend;
	}

	/** A request an allowance admitted is over: its slot comes back, its usage goes in a batch. */
	ended(spend: Spend<PoolDimension>, ended: EndedSpend, nowMs: number): void {
		this.#wallet.end(spend, nowMs);
		this.#ended.push(ended);
		this.#reportSinceMs ??= nowMs;
	}

	/** A request an allowance admitted is still running: its grant is renewed in the next batch. */
	renew(spend: Spend<PoolDimension>, nowMs: number): void {
		this.#wallet.renew(spend);
		this.#reportSinceMs ??= nowMs;
	}

	/** Stops spending (a send failed, the Pool asked, or the isolate is idle): the rest goes back. */
	closeAll(): void {
		this.#wallet.closeAll();
	}

	/** Whether an ask waits for the next batch. */
	get asking(): boolean {
		return this.#asks.size > 0;
	}

	/** Requests admitted from allowances and not yet ended. */
	get inUse(): number {
		return this.#wallet.inUse;
	}

	/**
	 * How long until the next batch is due: an ask within ASK_DELAY_MS, the rest of a grant whose
	 * window is over within RETURN_WITHIN_MS, ended requests within REPORT_EVERY_MS (each batch
	 * carries everything pending); undefined when nothing is pending and no grant is open.
	 */
	napMs(nowMs: number): number | undefined {
		if (this.#asks.size > 0) return ASK_DELAY_MS;
		let dueMs = Number.POSITIVE_INFINITY;
		if (this.#reportSinceMs !== undefined) dueMs = this.#reportSinceMs + REPORT_EVERY_MS;
		if (this.#wallet.returnsDue(nowMs)) dueMs = Math.min(dueMs, nowMs + RETURN_WITHIN_MS);
		const windowEndMs = this.#wallet.nextSpendEndMs();
		if (windowEndMs !== undefined) dueMs = Math.min(dueMs, windowEndMs);
		return dueMs === Number.POSITIVE_INFINITY ? undefined : Math.max(0, dueMs - nowMs);
	}

	/** The batch to send now, or undefined when nothing is due. */
	takeBatch(nowMs: number): AllowanceBatch | undefined {
		const napMs = this.napMs(nowMs);
		if (napMs === undefined || (napMs > 0 && this.#asks.size === 0)) return undefined;
		const batch: AllowanceBatch = {
			holder: this.holder,
			ended: this.#ended,
			reports: this.#wallet.reports(nowMs),
			asks: [...this.#asks.values()],
		};
		for (const key of this.#asks.keys()) this.#asking.add(key);
		this.#ended = [];
		this.#reportSinceMs = undefined;
		this.#asks.clear();
		return batch;
	}

	/** The Pool's answer to `batch`, sent at `sentAtMs` (both times on this holder's clock). */
	answered(
		batch: AllowanceBatch,
		answer: AllowanceAnswer & { nowMs: number },
		sentAtMs: number,
		nowMs: number,
	): void {
		const roundTripMs = Math.max(0, nowMs - sentAtMs);
		this.#roundTripMs += ROUND_TRIP_WEIGHT * (roundTripMs - this.#roundTripMs);
		for (const grant of answer.grants) {
			// Counted from when the batch left, on this clock: never later than on the Pool's.
			this.#wallet.add(grant, sentAtMs + (grant.spendUntilMs - answer.nowMs));
		}
		if (!answer.open) this.#wallet.closeAll();
		if (answer.grants.length < batch.asks.length) this.#askAgainAtMs = nowMs + ASK_AGAIN_AFTER_MS;
		this.#answeredAsks(batch);
	}

	/** The batch did not reach the Pool (it restarted, or is unreachable): spend nothing more. */
	failed(batch: AllowanceBatch, nowMs: number): void {
		this.#wallet.closeAll();
		this.#askAgainAtMs = nowMs + ASK_AGAIN_AFTER_MS;
		this.#answeredAsks(batch);
	}

	#answeredAsks(batch: AllowanceBatch): void {
		for (const ask of batch.asks) this.#asking.delete(scopeKey(ask.scope));
	}
}

function scopeKey(scope: AllowanceScope): string {
	return `${scope.tenant}\n${scope.model}`;
}
