// Allowances on a fake clock: the generic ledger and wallet, and the Pool as an authority that
// reserves them in its buckets, stops granting when anything waits, and takes back what is unused.
import { describe, expect, it } from "vitest";
import { AllowanceLedger } from "../../src/core/allowance.ts";
import { AllowanceWallet } from "../../src/core/allowance-wallet.ts";
import { DEFAULT_BACKOFF } from "../../src/core/backoff.ts";
import type { PoolLimits } from "../../src/core/limits.ts";
import type { AllowanceScope, PoolDimension } from "../../src/core/pool-allowances.ts";
import { POOL_DIMENSIONS } from "../../src/core/pool-allowances.ts";
import { type PoolSnapshot, PoolState } from "../../src/core/pool-state.ts";
import type { TenantPolicy } from "../../src/core/tenant-limits.ts";
import { ask, options } from "./build.ts";

const SCOPE: AllowanceScope = { tenant: "acme", model: "gpt-test" };
const WINDOW_MS = 1_000;
const RECLAIM_AFTER_MS = 60_000;

function pool(
	limits: Partial<PoolLimits> = {},
	snapshot?: PoolSnapshot,
	tenants: Record<string, TenantPolicy> = {},
): PoolState {
	const { limits: poolLimits, ...scheduler } = options(limits, { tenants });
	return new PoolState(
		{
			scheduler,
			configuredLimits: poolLimits,
			limitsFor: () => poolLimits,
			maxAttempts: 3,
			backoff: DEFAULT_BACKOFF,
			allowances: { spendWindowMs: WINDOW_MS, reclaimAfterMs: RECLAIM_AFTER_MS },
		},
		snapshot,
	);
}

const want = (requests: number, tokens: number, slots: number) => ({ requests, tokens, slots });

function grantFrom(state: PoolState, amount = want(5, 100, 3), nowMs = 0, holder = "isolate-a") {
	return state.settleAllowances(
		{ holder, ended: [], reports: [], asks: [{ scope: SCOPE, want: amount }] },
		nowMs,
	);
}

function wallet() {
	return new AllowanceWallet<PoolDimension, AllowanceScope>({
		dimensions: POOL_DIMENSIONS,
		reusable: ["slots"],
		counted: "requests",
		scopeKey: (scope) => `${scope.tenant}/${scope.model}`,
		windowMs: WINDOW_MS,
	});
}

describe("the ledger and the wallet", () => {
	it("takes back only what a grant still holds, and closes it on the holder's final report", () => {
		const ledger = new AllowanceLedger<"requests" | "tokens", string>(["requests", "tokens"]);
		ledger.open({
			id: "g1",
			holder: "h",
			scope: "s",
			amount: { requests: 4, tokens: 400 },
			spendUntilMs: 1_000,
			reclaimAtMs: 2_000,
		});
		expect(ledger.outstanding).toEqual({ requests: 4, tokens: 400 });
		// Two requests spent for good; it claims back more than is left: only what is left comes back.
		const back = ledger.report({
			grantId: "g1",
			used: { requests: 2, tokens: 150 },
			returned: { requests: 9, tokens: 250 },
			final: true,
		});
		expect(back).toEqual({
			used: { requests: 2, tokens: 150 },
			back: { requests: 2, tokens: 250 },
		});
		expect(ledger.outstanding).toEqual({ requests: 0, tokens: 0 });
		expect(ledger.report({ grantId: "g1", used: {}, returned: { requests: 1 }, final: true })).toBe(
			undefined,
		);
	});

	it("reclaims a grant whose holder never reported, at its reclaim time and not before", () => {
		const ledger = new AllowanceLedger<"slots", string>(["slots"]);
		const grant = { id: "g", holder: "h", scope: "s", amount: { slots: 3 } };
		ledger.open({ ...grant, spendUntilMs: 1_000, reclaimAtMs: 5_000 });
		expect(ledger.popReclaimable(4_999)).toBe(undefined);
		expect(ledger.popReclaimable(5_000)?.outstanding).toEqual({ slots: 3 });
		expect(ledger.outstanding).toEqual({ slots: 0 });
	});

	it("does not reclaim a grant whose holder reports it alive (a long request still running)", () => {
		const ledger = new AllowanceLedger<"slots", string>(["slots"]);
		const grant = { id: "g", holder: "h", scope: "s", amount: { slots: 1 } };
		ledger.open({ ...grant, spendUntilMs: 1_000, reclaimAtMs: 5_000 });
		const held = wallet();
		held.add(
			{ ...grant, scope: SCOPE, amount: want(1, 0, 1), reclaimAtMs: 5_000, spendUntilMs: 1_000 },
			1_000,
		);
		const spend = held.spend(SCOPE, { requests: 1, slots: 1 }, 0);
		held.reports(1_000);
		// The request is still running at 4 s: the Worker renews, and the wallet says so.
		held.renew(spend as NonNullable<typeof spend>);
		const [alive] = held.reports(4_000);
		expect(alive).toMatchObject({ grantId: "g", final: false });
		ledger.report(alive as NonNullable<typeof alive>, 4_000 + 5_000);
		expect(ledger.popReclaimable(5_000)).toBe(undefined);
		expect(ledger.popReclaimable(9_000)?.id).toBe("g");
	});

	it("keeps reclaiming the right grants after many were given back early", () => {
		const ledger = new AllowanceLedger<"slots", string>(["slots"]);
		const grant = (id: string, reclaimAtMs: number) =>
			ledger.open({
				id,
				holder: "h",
				scope: "s",
				amount: { slots: 1 },
				spendUntilMs: 0,
				reclaimAtMs,
			});
		for (let i = 0; i < 5_000; i++) {
			grant(`g${i}`, 10_000 + i);
			ledger.report({ grantId: `g${i}`, used: {}, returned: { slots: 1 }, final: true });
		}
		grant("silent", 20_000);
		expect(ledger.nextReclaimMs()).toBe(20_000);
		expect(ledger.popReclaimable(20_000)?.id).toBe("silent");
		expect(ledger.outstanding).toEqual({ slots: 0 });
	});

	it("spends a grant with no call, reuses a slot when its request ends, and gives back the rest", () => {
		const held = wallet();
		held.add(
			{
				id: "g",
				holder: "h",
				scope: SCOPE,
				amount: want(3, 300, 1),
				spendUntilMs: 1_000,
				reclaimAtMs: 9_000,
			},
			1_000,
		);
		const first = held.spend(SCOPE, { requests: 1, tokens: 100, slots: 1 }, 0);
		expect(first?.parts).toEqual([
			{ grantId: "g", amount: { requests: 1, tokens: 100, slots: 1 } },
		]);
		// Its one slot is in use: a second request at once is not admitted from it.
		expect(held.spend(SCOPE, { requests: 1, tokens: 100, slots: 1 }, 1)).toBe(undefined);
		held.end(first as NonNullable<typeof first>, 2);
		const second = held.spend(SCOPE, { requests: 1, tokens: 100, slots: 1 }, 2);
		expect(second?.parts[0]?.grantId).toBe("g");
		// Another scope never spends this grant.
		expect(held.spend({ ...SCOPE, tenant: "other" }, { requests: 1, slots: 1 }, 3)).toBe(undefined);
		// At the end of its window the rest goes back, but the slot only once its request ends.
		const atEnd = held.reports(1_000);
		expect(atEnd).toEqual([
			{
				grantId: "g",
				used: { requests: 2, tokens: 200, slots: 0 },
				returned: { requests: 1, tokens: 100, slots: 0 },
				final: false,
			},
		]);
		expect(held.spend(SCOPE, { requests: 1, slots: 1 }, 1_000)).toBe(undefined);
		held.end(second as NonNullable<typeof second>, 1_001);
		expect(held.reports(1_001)).toEqual([
			{
				grantId: "g",
				used: { requests: 0, tokens: 0, slots: 0 },
				returned: { requests: 0, tokens: 0, slots: 1 },
				final: true,
			},
		]);
		expect(held.reports(1_002)).toEqual([]);
	});

	it("spends a request from one grant and its slot from another when neither holds both", () => {
		const held = wallet();
		const grant = (id: string, amount: ReturnType<typeof want>, spendUntilMs: number) =>
			held.add(
				{ id, holder: "h", scope: SCOPE, amount, spendUntilMs, reclaimAtMs: 9_000 },
				spendUntilMs,
			);
		// An older grant with slots but no requests left, a newer one with requests but no slot free.
		grant("old", want(0, 0, 2), 500);
		grant("new", want(5, 500, 0), 1_000);
		const spend = held.spend(SCOPE, { requests: 1, tokens: 100, slots: 1 }, 0);
		expect(spend?.parts).toEqual([
			{ grantId: "new", amount: { requests: 1, tokens: 100 } },
			{ grantId: "old", amount: { slots: 1 } },
		]);
		held.end(spend as NonNullable<typeof spend>, 10);
		// The slot went back to its own grant, which reports nothing used; the other reports the request.
		expect(held.reports(600)).toEqual([
			{
				grantId: "old",
				used: { requests: 0, tokens: 0, slots: 0 },
				returned: { requests: 0, tokens: 0, slots: 2 },
				final: true,
			},
			{
				grantId: "new",
				used: { requests: 1, tokens: 100, slots: 0 },
				returned: { requests: 0, tokens: 0, slots: 0 },
				final: false,
			},
		]);
	});

	it("asks for as much as it used over the last window, and not while it holds enough", () => {
		const held = wallet();
		for (let ms = 0; ms < 1_000; ms += 10)
			held.spend(SCOPE, { requests: 1, tokens: 50, slots: 1 }, ms);
		const asked = held.want(SCOPE, { requests: 2 }, 1_000);
		expect(asked?.requests).toBeGreaterThanOrEqual(95);
		expect(asked?.tokens).toBeGreaterThanOrEqual(95 * 50);
		// Slots: until a spend's duration is known, each request is assumed to hold one the whole window.
		expect(asked?.slots).toBeGreaterThanOrEqual(95);
		held.add(
			{
				id: "g",
				holder: "h",
				scope: SCOPE,
				amount: asked as NonNullable<typeof asked>,
				spendUntilMs: 2_000,
				reclaimAtMs: 9_000,
			},
			2_000,
		);
		expect(held.want(SCOPE, { requests: 2 }, 1_000)).toBe(undefined);
	});
});

describe("the Pool as an allowance authority", () => {
	it("reserves a grant in its buckets at once, and refunds what comes back unused", () => {
		const state = pool();
		const answer = grantFrom(state, want(5, 100, 3));
		expect(answer.open).toBe(true);
		expect(answer.grants[0]?.amount).toEqual(want(5, 100, 3));
		expect(state.rateLimitView(0).requests.remaining).toBe(95);
		expect(state.rateLimitView(0).tokens.remaining).toBe(9_900);
		expect(state.status(0).allowances).toEqual(want(5, 100, 3));
		const grantId = answer.grants[0]?.id as string;
		state.settleAllowances(
			{
				holder: "isolate-a",
				ended: [
					{ ticketId: "x", scope: SCOPE, tokens: 20, actualTokens: 50, providerAnswered: true },
				],
				reports: [
					{ grantId, used: { requests: 1, tokens: 20 }, returned: want(4, 80, 3), final: true },
				],
				asks: [],
			},
			0,
		);
		// The request the allowance admitted shows in the operator's admissions.
		const admitted = state.series(0).series.admitted ?? [];
		expect(admitted.reduce((sum, count) => sum + count, 0)).toBe(1);
		// One request and its actual 50 tokens stay charged; everything else is back.
		expect(state.rateLimitView(0).requests.remaining).toBe(99);
		expect(state.rateLimitView(0).tokens.remaining).toBe(9_950);
		expect(state.status(0).allowances).toEqual(want(0, 0, 0));
	});

	it("keeps a grant held while its buckets refill: what the isolate may still spend is never admitted twice", () => {
		const state = pool();
		const grant = grantFrom(state, want(10, 100, 1), 0).grants[0];
		expect(grant?.amount.requests).toBe(10);
		// Ten seconds later the bucket has refilled, but only up to what the grant leaves.
		let admitted = 0;
		for (let i = 0; i < 100; i++) {
			if (state.submit(ask({ ticketId: `r${i}`, tokens: 1 }), 10_000).kind === "admitted")
				admitted++;
		}
		expect(admitted).toBe(90);
		// Once the isolate reports the ten spent, the capacity is whole again and refills.
		state.settleAllowances(
			{
				holder: "isolate-a",
				ended: [],
				reports: [
					{
						grantId: grant?.id as string,
						used: { requests: 10, tokens: 100 },
						returned: { slots: 1 },
						final: true,
					},
				],
				asks: [],
			},
			10_000,
		);
		expect(state.rateLimitView(30_000).requests.remaining).toBe(100);
	});

	it("holds a grant's slots out of the leases' reach until they come back or are reclaimed", () => {
		const state = pool({ maxConcurrent: 20 });
		const grant = grantFrom(state, want(5, 100, 2)).grants[0];
		expect(grant?.amount.slots).toBe(2);
		let admitted = 0;
		for (let i = 0; i < 20; i++) {
			if (state.submit(ask({ ticketId: `s${i}`, tokens: 1 }), 0).kind === "admitted") admitted++;
		}
		expect(admitted).toBe(18);
		// The isolate went silent: its slots come back at the reclaim time; its requests and tokens
		// stay charged, as spent, and the grant is gone.
		const reclaimAtMs = WINDOW_MS + RECLAIM_AFTER_MS;
		expect(state.nextWakeMs(1_000)).toBeLessThanOrEqual(reclaimAtMs);
		const outcomes = state.tick(reclaimAtMs);
		expect(outcomes.filter((outcome) => outcome.result.kind === "admitted")).toHaveLength(2);
		expect(state.status(reclaimAtMs).allowances).toEqual(want(0, 0, 0));
	});

	it("grants nothing while anything waits, even with room in its buckets, and tells holders to stop", () => {
		const state = pool({}, undefined, { slow: { weight: 1, requestsPerMinute: 1 } });
		// A tenant at a limit of its own waits; the pool's buckets are all but full.
		for (let i = 0; i < 2; i++) state.submit(ask({ tenant: "slow", tokens: 1 }), 0);
		expect(state.status(0).queued).toBe(1);
		expect(grantFrom(state, want(1, 1, 1))).toEqual({ grants: [], open: false });
		// Once nobody waits, grants resume.
		state.tick(60_000);
		expect(state.status(60_000).queued).toBe(0);
		expect(grantFrom(state, want(1, 1, 1), 60_000).grants).toHaveLength(1);
	});

	it("grants nothing that would bring a bucket or the slots near the limit", () => {
		// 100 requests: a grant leaves at least half of them; one grant is at most a tenth.
		const state = pool();
		expect(grantFrom(state, want(50, 10, 1)).grants[0]?.amount.requests).toBe(10);
		for (let i = 0; i < 40; i++) state.submit(ask({ tokens: 1 }), 0);
		// 50 left: any grant now would leave less than half.
		expect(grantFrom(state, want(1, 1, 1)).grants).toEqual([]);
		const slots = pool({ maxConcurrent: 10 });
		for (let i = 0; i < 5; i++) slots.submit(ask({ tokens: 1 }), 0);
		expect(grantFrom(slots, want(1, 1, 1)).grants).toEqual([]);
	});

	it("keeps outstanding grants and their slots across a restart", () => {
		const state = pool({ maxConcurrent: 20 });
		grantFrom(state, want(5, 100, 2));
		const restored = pool({ maxConcurrent: 20 }, JSON.parse(JSON.stringify(state.snapshot())));
		expect(restored.status(0).allowances).toEqual(want(5, 100, 2));
		expect(restored.status(0).maxConcurrent).toBe(18);
		expect(restored.rateLimitView(0).requests.remaining).toBe(95);
	});
});
