// The worst case for allowances, on a fake clock: 50 isolates each holding allowances from one
// pool when a burst of 3× its bucket arrives. The provider (a bucket of the same limits) never goes
// below zero, no grant is made while anything waits, and once a queue forms the isolates stop
// spending and the queue admits high before low.
import { describe, expect, it } from "vitest";
import { AllowanceWallet, type Spend } from "../../src/core/allowance-wallet.ts";
import { DEFAULT_BACKOFF } from "../../src/core/backoff.ts";
import type {
	AllowanceBatch,
	AllowanceScope,
	EndedSpend,
	PoolDimension,
} from "../../src/core/pool-allowances.ts";
import { POOL_DIMENSIONS } from "../../src/core/pool-allowances.ts";
import { PoolState } from "../../src/core/pool-state.ts";
import type { Priority } from "../../src/core/priority.ts";
import { bucketSpec, charge, fullBucket, levelAt } from "../../src/core/token-bucket.ts";
import { options } from "./build.ts";

const ISOLATES = 50;
const WINDOW_MS = 1_000;
const FLUSH_MS = 5;
const LATENCY_MS = 100;
const TOKENS = 100;
/** 100 requests a second, a bucket of 1,000; 10 k tokens a second, a bucket of 100 k; 400 slots. */
const LIMITS = {
	requestsPerMinute: 6_000,
	burstRequests: 1_000,
	tokensPerMinute: 600_000,
	burstTokens: 100_000,
	maxConcurrent: 400,
};
const SCOPE: AllowanceScope = { tenant: "acme", model: "gpt-test" };
const BURST_AT_MS = 5_000;
const BURST_PER_ISOLATE = 60;
const END_MS = 60_000;

interface Sent {
	ticketId: string;
	priority: Priority;
	fromAllowance: boolean;
	atMs: number;
}

describe("50 isolates holding allowances when a burst arrives", () => {
	it("never lets the provider's bucket go below zero, and priorities hold once a queue forms", () => {
		const { limits, ...scheduler } = options(LIMITS, { maxQueueLength: 10_000 });
		const pool = new PoolState({
			scheduler,
			configuredLimits: limits,
			limitsFor: () => limits,
			maxAttempts: 3,
			backoff: DEFAULT_BACKOFF,
			allowances: { spendWindowMs: WINDOW_MS, reclaimAfterMs: 600_000 },
		});
		// The provider: buckets of the same limits, full at the start, and its concurrency.
		const providerRequests = bucketSpec(LIMITS.requestsPerMinute, LIMITS.burstRequests);
		const providerTokens = bucketSpec(LIMITS.tokensPerMinute, LIMITS.burstTokens);
		let requestLevel = fullBucket(providerRequests);
		let tokenLevel = fullBucket(providerTokens);
		let running = 0;
		let lowestRequests = Number.POSITIVE_INFINITY;
		let lowestTokens = Number.POSITIVE_INFINITY;
		let mostRunning = 0;

		const sent: Sent[] = [];
		const ends = new Map<number, (() => void)[]>();
		const later = (atMs: number, end: () => void) =>
			ends.set(atMs, [...(ends.get(atMs) ?? []), end]);
		const waiting = new Map<string, { priority: Priority }>();
		const queuedPriority = new Map<string, Priority>();
		let queueFormedMs: number | undefined;
		const grantsWhileQueued: number[] = [];

		const send = (ticketId: string, priority: Priority, fromAllowance: boolean, nowMs: number) => {
			requestLevel = charge(providerRequests, requestLevel, 1, nowMs);
			tokenLevel = charge(providerTokens, tokenLevel, TOKENS, nowMs);
			lowestRequests = Math.min(lowestRequests, levelAt(providerRequests, requestLevel, nowMs));
			lowestTokens = Math.min(lowestTokens, levelAt(providerTokens, tokenLevel, nowMs));
			running++;
			mostRunning = Math.max(mostRunning, running);
			sent.push({ ticketId, priority, fromAllowance, atMs: nowMs });
		};

		class Isolate {
			readonly name: string;
			readonly wallet = new AllowanceWallet<PoolDimension, AllowanceScope>({
				dimensions: POOL_DIMENSIONS,
				reusable: ["slots"],
				counted: "requests",
				scopeKey: (scope) => `${scope.tenant}/${scope.model}`,
				windowMs: WINDOW_MS,
			});
			ended: EndedSpend[] = [];
			asks: AllowanceBatch["asks"] = [];
			flushAtMs: number | undefined;
			#tickets = 0;

			constructor(name: string) {
				this.name = name;
			}

			request(priority: Priority, nowMs: number): void {
				const ticketId = `${this.name}-${this.#tickets++}`;
				const spend = this.wallet.spend(SCOPE, { requests: 1, tokens: TOKENS, slots: 1 }, nowMs);
				const want = this.wallet.want(SCOPE, { requests: 2, tokens: 2 * TOKENS, slots: 1 }, nowMs);
				if (want && this.asks.length === 0) {
					this.asks.push({ scope: SCOPE, want });
					this.flushAtMs ??= nowMs + FLUSH_MS;
				}
				if (spend) {
					send(ticketId, priority, true, nowMs);
					later(nowMs + LATENCY_MS, () => this.#endSpend(ticketId, spend, nowMs + LATENCY_MS));
					return;
				}
				const decision = pool.submit(
					{ ticketId, ...SCOPE, priority, tokens: TOKENS, deadlineMs: nowMs + 300_000 },
					nowMs,
				);
				if (decision.kind === "admitted") admitted(ticketId, priority, nowMs);
				else if (decision.kind === "queued") {
					queueFormedMs ??= nowMs;
					waiting.set(ticketId, { priority });
					queuedPriority.set(ticketId, priority);
				} else throw new Error(`${ticketId} turned away: ${decision.reason}`);
			}

			flush(nowMs: number): void {
				this.flushAtMs = undefined;
				const batch: AllowanceBatch = {
					holder: this.name,
					ended: this.ended,
					reports: this.wallet.reports(nowMs),
					asks: this.asks,
				};
				this.ended = [];
				this.asks = [];
				const queuedBefore = pool.status(nowMs).queued;
				const answer = pool.settleAllowances(batch, nowMs);
				if (queuedBefore > 0 && answer.grants.length > 0) grantsWhileQueued.push(nowMs);
				for (const grant of answer.grants) this.wallet.add(grant, grant.spendUntilMs);
				if (!answer.open) this.wallet.closeAll();
				if (this.wallet.hasReports(nowMs)) this.flushAtMs = nowMs + FLUSH_MS;
			}

			#endSpend(ticketId: string, spend: Spend<PoolDimension>, nowMs: number): void {
				running--;
				this.wallet.end(spend, nowMs);
				this.ended.push({
					ticketId,
					scope: SCOPE,
					tokens: TOKENS,
					actualTokens: TOKENS,
					providerAnswered: true,
				});
				this.flushAtMs ??= nowMs + FLUSH_MS;
			}
		}

		const admitted = (ticketId: string, priority: Priority, nowMs: number) => {
			send(ticketId, priority, false, nowMs);
			later(nowMs + LATENCY_MS, () => {
				running--;
				pool.release(ticketId, TOKENS, true, undefined, nowMs + LATENCY_MS);
			});
		};

		const isolates = Array.from({ length: ISOLATES }, (_, i) => new Isolate(`isolate-${i}`));
		let granted = false;
		for (let nowMs = 0; nowMs <= END_MS; nowMs++) {
			for (const end of ends.get(nowMs) ?? []) end();
			ends.delete(nowMs);
			isolates.forEach((isolate, i) => {
				// Light load before the burst: each isolate sends one request every 500 ms (100 a second).
				if (nowMs < BURST_AT_MS && (nowMs + i * 10) % 500 === 0) isolate.request("normal", nowMs);
				// The burst: each isolate sends 60 requests over 60 ms, every other one high.
				if (nowMs >= BURST_AT_MS && nowMs < BURST_AT_MS + BURST_PER_ISOLATE) {
					isolate.request((nowMs + i) % 2 === 0 ? "high" : "low", nowMs);
				}
				// A window that ended while the isolate was idle is reported too.
				if (isolate.flushAtMs === undefined && isolate.wallet.hasReports(nowMs)) {
					isolate.flushAtMs = nowMs + FLUSH_MS;
				}
				if (isolate.flushAtMs !== undefined && isolate.flushAtMs <= nowMs) isolate.flush(nowMs);
			});
			for (const { ticketId, result } of pool.tick(nowMs)) {
				const waiter = waiting.get(ticketId);
				if (!waiter) continue;
				waiting.delete(ticketId);
				if (result.kind !== "admitted")
					throw new Error(`${ticketId} turned away: ${result.reason}`);
				admitted(ticketId, waiter.priority, nowMs);
			}
			if (nowMs === BURST_AT_MS - 1) {
				// Every isolate holds an allowance when the burst arrives.
				granted = isolates.every((isolate) => isolate.wallet.nextSpendEndMs() !== undefined);
			}
		}

		expect(granted).toBe(true);
		const fromAllowances = sent.filter((s) => s.fromAllowance).length;
		expect(fromAllowances).toBeGreaterThan(sent.length / 10);
		expect(sent).toHaveLength(ISOLATES * (BURST_AT_MS / 500 + BURST_PER_ISOLATE));
		// The provider never sees more than its limits.
		expect(lowestRequests).toBeGreaterThanOrEqual(-1e-6);
		expect(lowestTokens).toBeGreaterThanOrEqual(-1e-6);
		expect(mostRunning).toBeLessThanOrEqual(LIMITS.maxConcurrent);
		// A queue formed; no grant was made while anything waited.
		expect(queueFormedMs).toBeDefined();
		expect(grantsWhileQueued).toEqual([]);
		// Isolates stop spending within one batch of the queue forming (its fairness cost)...
		const formed = queueFormedMs as number;
		const lastSpendMs = Math.max(...sent.filter((s) => s.fromAllowance).map((s) => s.atMs));
		expect(lastSpendMs).toBeLessThanOrEqual(formed + 2 * FLUSH_MS);
		// ...and the queue admits every high waiter before any low one.
		const fromQueue = sent.filter((s) => queuedPriority.has(s.ticketId));
		const lastHighMs = Math.max(
			...fromQueue.filter((s) => s.priority === "high").map((s) => s.atMs),
		);
		const firstLowMs = Math.min(
			...fromQueue.filter((s) => s.priority === "low").map((s) => s.atMs),
		);
		expect(fromQueue.filter((s) => s.priority === "high").length).toBeGreaterThan(500);
		expect(firstLowMs).toBeGreaterThanOrEqual(lastHighMs);
		// Everything held comes back once the isolates are idle and their windows over.
		expect(pool.status(END_MS).allowances).toEqual({ requests: 0, tokens: 0, slots: 0 });
	});
});
