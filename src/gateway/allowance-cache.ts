// The isolate's allowances from one Pool: requests admitted from them with no round trip, and one
// batch RPC every few milliseconds that carries the ended requests, what goes back, and asks for
// more. Nothing on a response's path waits for it, and no request waits on another's promise
// (workerd cancels a request that does): the batches run in the request that started them.

import type { AllowanceBatch, Pool, RateLimitView } from "../durable/pool.ts";
import {
	type AllowanceScope,
	AllowanceWallet,
	type EndedSpend,
	POOL_DIMENSIONS,
	type PoolDimension,
	type Spend,
} from "../durable/pool-allowances.ts";

/** An ask for a grant waits this long for others to share its RPC... */
const ASK_DELAY_MS = 5;
/**
 * ...and ended requests and what goes back, this long: they are not urgent (what they report was
 * reserved already), so at any rate they cost the Pool at most one call per this many ms.
 */
const REPORT_EVERY_MS = 20;
/** The least an ask asks for: a few requests, so that a slow isolate does not ask for every one. */
const LEAST_REQUESTS = 4;
/** After the Pool granted nothing (it queues, or is near its limits), no ask for this long. */
const ASK_AGAIN_AFTER_MS = 250;
/** One pump (a loop of batches, kept alive by the request that started it) runs at most this long. */
const PUMP_LIMIT_MS = 10_000;

export interface AllowanceSpend {
	spend: Spend<PoolDimension>;
	scope: AllowanceScope;
	tokens: number;
	/** The pool's buckets as of the last batch: for the caller's rate-limit headers. */
	limits: RateLimitView;
}

type PoolNamespace = DurableObjectNamespace<Pool>;

export class AllowanceCache {
	readonly #holder = crypto.randomUUID();
	readonly #namespace: PoolNamespace;
	readonly #pool: string;
	readonly #wallet: AllowanceWallet<PoolDimension, AllowanceScope>;
	#ended: EndedSpend[] = [];
	readonly #asks = new Map<string, AllowanceBatch["asks"][number]>();
	/** Scopes with an ask in flight: no second ask for them until it is answered. */
	readonly #asking = new Set<string>();
	#limits: RateLimitView | undefined;
	#askAgainAtMs = 0;
	#pump: Promise<void> | undefined;

	constructor(namespace: PoolNamespace, pool: string, spendWindowMs: number) {
		this.#namespace = namespace;
		this.#pool = pool;
		this.#wallet = new AllowanceWallet({
			dimensions: POOL_DIMENSIONS,
			reusable: ["slots"],
			counted: "requests",
			scopeKey: scopeKey,
			windowMs: spendWindowMs,
		});
	}

	/**
	 * Admits a request of `tokens` for `scope` from an allowance, or undefined (then it asks the
	 * Pool as usual). Either way, asks for a grant in the next batch when the allowances run low.
	 */
	admit(
		scope: AllowanceScope,
		tokens: number,
		keepAlive: (pump: Promise<void>) => void,
	): AllowanceSpend | undefined {
		const nowMs = Date.now();
		const spend = this.#wallet.spend(scope, { requests: 1, tokens, slots: 1 }, nowMs);
		const key = scopeKey(scope);
		if (!this.#asking.has(key) && nowMs >= this.#askAgainAtMs) {
			const least = { requests: LEAST_REQUESTS, tokens: LEAST_REQUESTS * tokens, slots: 1 };
			const want = this.#wallet.want(scope, least, nowMs);
			if (want) {
				this.#asks.set(key, { scope, want });
				this.#asking.add(key);
				this.#start(keepAlive);
			}
		}
		// Grants come only with an answer, which carries the limits: a spend always has them.
		const limits = this.#limits;
		return spend && limits && { spend, scope, tokens, limits };
	}

	/**
	 * A request an allowance admitted is over: its slot comes back and its usage goes in the next
	 * batch. `keepAlive` holds the loop of batches if this call starts it.
	 */
	ended(
		spent: AllowanceSpend,
		ended: Omit<EndedSpend, "scope" | "tokens">,
		keepAlive: (pump: Promise<void>) => void,
	): void {
		this.#wallet.end(spent.spend, Date.now());
		this.#ended.push({ ...ended, scope: spent.scope, tokens: spent.tokens });
		this.#start(keepAlive);
	}

	/** A request an allowance admitted is still running: its grant is renewed in the next batch. */
	renew(spent: AllowanceSpend, keepAlive: (pump: Promise<void>) => void): void {
		this.#wallet.renew(spent.spend);
		this.#start(keepAlive);
	}

	/** Stops spending (a send failed, or the Pool asked): what is left goes back in the next batch. */
	closeAll(keepAlive: (pump: Promise<void>) => void): void {
		this.#wallet.closeAll();
		this.#start(keepAlive);
	}

	/** Starts the loop of batches in the calling request, unless it runs already. */
	#start(keepAlive: (pump: Promise<void>) => void): void {
		if (this.#pump) return;
		this.#pump = this.#run().finally(() => {
			this.#pump = undefined;
		});
		keepAlive(this.#pump);
	}

	/**
	 * Sends a batch when there is something to say (an ask within ASK_DELAY_MS, the rest within
	 * REPORT_EVERY_MS), until no grant is open and nothing is left to report. A loop
	 * lives at most PUMP_LIMIT_MS (a request's waitUntil is bounded), then ends: the next request,
	 * or the end of one in flight, starts a new one; with none in flight it first closes the grants
	 * and gives back what is left, in case no request comes again.
	 */
	async #run(): Promise<void> {
		const startedMs = Date.now();
		for (;;) {
			const napMs = this.#asks.size > 0 ? ASK_DELAY_MS : REPORT_EVERY_MS;
			await new Promise((woken) => setTimeout(woken, napMs));
			const nowMs = Date.now();
			const last = nowMs - startedMs >= PUMP_LIMIT_MS;
			if (last && this.#wallet.inUse === 0) this.#wallet.closeAll();
			if (this.#ended.length > 0 || this.#asks.size > 0 || this.#wallet.hasReports(nowMs)) {
				await this.#flush();
			}
			if (last) return;
			if (this.#wallet.nextSpendEndMs() === undefined && this.#ended.length === 0) return;
		}
	}

	async #flush(): Promise<void> {
		const sentAtMs = Date.now();
		const batch: AllowanceBatch = {
			holder: this.#holder,
			ended: this.#ended,
			reports: this.#wallet.reports(sentAtMs),
			asks: [...this.#asks.values()],
		};
		this.#ended = [];
		this.#asks.clear();
		try {
			const answer = await this.#namespace.getByName(this.#pool).allowances(batch);
			this.#limits = answer.limits;
			for (const grant of answer.grants) {
				// Counted from when the batch left, on this clock: never later than on the Pool's.
				this.#wallet.add(grant, sentAtMs + (grant.spendUntilMs - answer.nowMs));
			}
			if (!answer.open) this.#wallet.closeAll();
			if (answer.grants.length < batch.asks.length)
				this.#askAgainAtMs = Date.now() + ASK_AGAIN_AFTER_MS;
		} catch (error) {
			// The Pool restarted or is unreachable: spend nothing more; it reclaims what was held.
			console.warn(
				JSON.stringify({ pool: this.#pool, allowances: "batch_failed", error: String(error) }),
			);
			this.#wallet.closeAll();
			this.#askAgainAtMs = Date.now() + ASK_AGAIN_AFTER_MS;
		} finally {
			for (const ask of batch.asks) this.#asking.delete(scopeKey(ask.scope));
		}
	}
}

function scopeKey(scope: AllowanceScope): string {
	return `${scope.tenant}\n${scope.model}`;
}

const caches = new Map<string, AllowanceCache>();

/** This isolate's allowances from the pool named `pool` (one cache per pool per isolate). */
export function allowancesOf(
	namespace: PoolNamespace,
	pool: string,
	spendWindowMs: number,
): AllowanceCache {
	let cache = caches.get(pool);
	if (!cache) {
		cache = new AllowanceCache(namespace, pool, spendWindowMs);
		caches.set(pool, cache);
	}
	return cache;
}
