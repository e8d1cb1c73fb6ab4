// The budget book with a fake clock: exact under concurrency, the downgrade from exactly its
// threshold, per-user budgets inside the tenant's, windows that reset at local midnight across DST,
// and costs priced with cached input as cached.
import { describe, expect, it } from "vitest";
import {
	type BudgetAsk,
	BudgetBook,
	type BudgetPolicy,
	HELD_RETRY_AFTER_MS,
} from "../../src/core/budget.ts";
import { chargeOf, estimatedCharge } from "../../src/core/budget-cost.ts";
import { budgetWindows } from "../../src/core/budget-windows.ts";
import { seededRandom } from "../support/seeded-random.ts";

const T0 = Date.UTC(2026, 5, 15, 12); // 15 June 2026, noon UTC

function policy(tenant: BudgetPolicy["tenant"], extra: Partial<BudgetPolicy> = {}): BudgetPolicy {
	return { tenant, downgradeAt: 0.9, timeZone: "UTC", ...extra };
}

function ask(
	id: string,
	tokens: number,
	p: BudgetPolicy,
	extra: Partial<BudgetAsk> = {},
): BudgetAsk {
	return {
		id,
		requested: { model: "big", promptTokens: 0, estimate: { tokens, nanoUsd: 0 } },
		policy: p,
		...extra,
	};
}

describe("exactness", () => {
	it("1,000 concurrent requests against a budget of N never charge more than N", () => {
		const random = seededRandom(11);
		const N = 100_000;
		const book = new BudgetBook();
		const p = policy({ tokensPerDay: N });
		let now = T0;
		const open: { id: string; estimate: number }[] = [];
		let admitted = 0;
		let refused = 0;
		let charged = 0;
		for (let i = 0; i < 1000; i++) {
			now += Math.floor(random() * 5);
			const estimate = 50 + Math.floor(random() * 400);
			const decision = book.admit(ask(`r${i}`, estimate, p), now);
			if (decision.kind === "reserved") {
				admitted++;
				open.push({ id: `r${i}`, estimate });
			} else {
				refused++;
			}
			// Settle some of the open ones, in random order, at or below their estimate.
			while (open.length > 0 && random() < 0.4) {
				const [done] = open.splice(Math.floor(random() * open.length), 1);
				if (!done) break;
				const actual = Math.floor(done.estimate * random());
				book.settle(done.id, { tokens: actual, nanoUsd: 0 });
				charged += actual;
			}
			const level = book.level(undefined, now, "UTC").day;
			expect(level.used.tokens + level.reserved.tokens).toBeLessThanOrEqual(N);
		}
		for (const done of open) {
			book.settle(done.id, { tokens: done.estimate, nanoUsd: 0 });
			charged += done.estimate;
		}
		expect(admitted).toBeGreaterThan(100);
		expect(refused).toBeGreaterThan(0);
		expect(charged).toBeLessThanOrEqual(N);
		expect(book.level(undefined, now, "UTC").day.used.tokens).toBe(charged);
	});

	it("a request that did no work gives its whole reservation back", () => {
		const book = new BudgetBook();
		const p = policy({ tokensPerDay: 1000 });
		expect(book.admit(ask("a", 1000, p), T0).kind).toBe("reserved");
		expect(book.admit(ask("b", 1, p), T0).kind).toBe("exhausted");
		book.settle("a", { tokens: 0, nanoUsd: 0 });
		expect(book.admit(ask("b", 1000, p), T0).kind).toBe("reserved");
	});

	it("a reservation whose holder vanished is charged at its estimate once reclaimed", () => {
		const book = new BudgetBook();
		const p = policy({ tokensPerDay: 1000 });
		book.admit(ask("a", 400, p), T0);
		expect(book.reclaim(T0 + 59_000, 60_000)).toEqual([]);
		const [settled] = book.reclaim(T0 + 60_000, 60_000);
		expect(settled?.charged.tokens).toBe(400);
		expect(book.level(undefined, T0 + 60_000, "UTC").day).toMatchObject({
			used: { tokens: 400 },
			reserved: { tokens: 0 },
		});
	});
});

describe("downgrade", () => {
	const downgrade = { model: "small", promptTokens: 0, estimate: { tokens: 10, nanoUsd: 0 } };

	it("starts exactly when usage with reservations reaches downgradeAt", () => {
		const book = new BudgetBook();
		const p = policy({ tokensPerDay: 1000 });
		book.admit(ask("used", 899, p), T0);
		book.settle("used", { tokens: 899, nanoUsd: 0 });
		const below = book.admit(ask("a", 1, p, { downgrade }), T0);
		expect(below).toMatchObject({ kind: "reserved", model: "big", downgraded: false });
		// 899 used + 1 reserved = 900 = 0.9 × 1000: the threshold, reservations counted.
		const at = book.admit(ask("b", 10, p, { downgrade }), T0);
		expect(at).toMatchObject({ kind: "reserved", model: "small", downgraded: true });
	});

	it("a model without a mapping runs on to the hard limit, then is refused until the reset", () => {
		const book = new BudgetBook();
		const p = policy({ tokensPerDay: 1000 });
		expect(book.admit(ask("a", 950, p), T0)).toMatchObject({ kind: "reserved", model: "big" });
		// Held by a request in flight: refused, but told to come back in a second, not at midnight.
		expect(book.admit(ask("b", 100, p), T0)).toMatchObject({
			kind: "exhausted",
			held: true,
			retryAfterMs: HELD_RETRY_AFTER_MS,
		});
		book.settle("a", { tokens: 950, nanoUsd: 0 });
		const refused = book.admit(ask("b", 100, p), T0);
		expect(refused).toMatchObject({
			kind: "exhausted",
			held: false,
			budget: "tokensPerDay of the tenant",
		});
		if (refused.kind !== "exhausted") return;
		expect(refused.resetAtMs).toBe(Date.UTC(2026, 5, 16));
		expect(refused.retryAfterMs).toBe(Date.UTC(2026, 5, 16) - T0);
		expect(book.admit(ask("c", 100, p), Date.UTC(2026, 5, 16)).kind).toBe("reserved");
	});

	it("applies when a user's budget reaches the threshold, though the tenant's is far", () => {
		const book = new BudgetBook();
		const p = policy({ tokensPerDay: 1_000_000 }, { user: { tokensPerDay: 100 } });
		book.admit(ask("a", 90, p, { user: "alice" }), T0);
		expect(book.admit(ask("b", 5, p, { user: "alice", downgrade }), T0)).toMatchObject({
			model: "small",
		});
		expect(book.admit(ask("c", 5, p, { user: "bob", downgrade }), T0)).toMatchObject({
			model: "big",
		});
		const refused = book.admit(ask("d", 50, p, { user: "alice" }), T0);
		expect(refused).toMatchObject({ kind: "exhausted", budget: 'tokensPerDay of user "alice"' });
	});
});

describe("windows", () => {
	it("reset at local midnight in New York across the spring DST change", () => {
		const zone = "America/New_York";
		// 2026-03-08 02:00 EST becomes 03:00 EDT: that day is 23 hours long.
		const saturday = budgetWindows(Date.UTC(2026, 2, 7, 20), zone);
		expect(saturday.day).toBe("2026-03-07");
		expect(saturday.dayResetMs).toBe(Date.UTC(2026, 2, 8, 5)); // midnight EST = 05:00 UTC
		const sunday = budgetWindows(Date.UTC(2026, 2, 8, 12), zone);
		expect(sunday.day).toBe("2026-03-08");
		expect(sunday.dayResetMs).toBe(Date.UTC(2026, 2, 9, 4)); // midnight EDT = 04:00 UTC
		expect(sunday.dayResetMs - saturday.dayResetMs).toBe(23 * 3_600_000);
		expect(sunday.monthResetMs).toBe(Date.UTC(2026, 3, 1, 4));

		const book = new BudgetBook();
		const p = policy({ tokensPerDay: 100 }, { timeZone: zone });
		book.admit(ask("a", 100, p), Date.UTC(2026, 2, 8, 4, 59, 59)); // 23:59:59 EST on the 7th
		book.settle("a", { tokens: 100, nanoUsd: 0 });
		expect(book.admit(ask("b", 1, p), Date.UTC(2026, 2, 8, 4, 59, 59, 999)).kind).toBe("exhausted");
		expect(book.admit(ask("c", 1, p), Date.UTC(2026, 2, 8, 5)).kind).toBe("reserved");
	});

	it("reset at local midnight in Paris across the autumn DST change, and on the 1st", () => {
		const zone = "Europe/Paris";
		// 2026-10-25 03:00 CEST becomes 02:00 CET: that day is 25 hours long.
		const sunday = budgetWindows(Date.UTC(2026, 9, 25, 12), zone);
		expect(sunday.dayResetMs).toBe(Date.UTC(2026, 9, 25, 23)); // midnight CET = 23:00 UTC
		expect(sunday.monthResetMs).toBe(Date.UTC(2026, 9, 31, 23));
		const lastOfMonth = budgetWindows(Date.UTC(2026, 9, 31, 22, 59), zone);
		expect(lastOfMonth.month).toBe("2026-10");
		expect(budgetWindows(Date.UTC(2026, 9, 31, 23), zone).month).toBe("2026-11");
	});

	it("a month budget carries across days and resets on the 1st", () => {
		const book = new BudgetBook();
		const p = policy({ tokensPerMonth: 100 });
		book.admit(ask("a", 60, p), Date.UTC(2026, 5, 1));
		book.settle("a", undefined);
		expect(book.admit(ask("b", 60, p), Date.UTC(2026, 5, 30, 23)).kind).toBe("exhausted");
		expect(book.admit(ask("c", 60, p), Date.UTC(2026, 6, 1)).kind).toBe("reserved");
	});
});

describe("cost", () => {
	const price = { input: 3, cachedInput: 0.3, cacheWrite: 3.75, output: 15 };

	it("prices cached input as cached, cache writes at their rate, reasoning as output", () => {
		// 1,000 input of which 600 read from cache and 100 written to it; 500 output.
		const charge = chargeOf(
			{ inputTokens: 1000, cachedInputTokens: 600, cacheWriteInputTokens: 100, outputTokens: 500 },
			price,
		);
		// 300 × $3 + 600 × $0.30 + 100 × $3.75 + 500 × $15, per million tokens.
		expect(charge).toEqual({ tokens: 1500, nanoUsd: (900 + 180 + 375 + 7500) * 1000 });
		expect(estimatedCharge(1000, 500, price).nanoUsd).toBe((3000 + 7500) * 1000);
	});

	it("refuses a request whose cost does not fit, while tokens would", () => {
		const book = new BudgetBook();
		const p = policy({ tokensPerDay: 1_000_000, costPerDayUsd: 0.01 });
		const costly = (id: string, nanoUsd: number) => ({
			id,
			requested: { model: "big", promptTokens: 0, estimate: { tokens: 10, nanoUsd } },
			policy: p,
		});
		expect(book.admit(costly("a", 6_000_000), T0).kind).toBe("reserved");
		const refused = book.admit(costly("b", 6_000_000), T0);
		expect(refused).toMatchObject({ kind: "exhausted", budget: "costPerDayUsd of the tenant" });
		expect(refused.remaining.nanoUsd).toBe(4_000_000);
	});
});
