// Budget allowances with a fake clock: granted only far from every threshold, spent by isolates
// with no round trip, never more held than is left; given back on release, reclaimed on expiry,
// held across a restart of the authority.
import { describe, expect, it } from "vitest";
import { type BudgetAsk, BudgetBook, type BudgetPolicy } from "../../src/core/budget.ts";
import { BudgetWallet } from "../../src/core/budget-wallet.ts";
import { seededRandom } from "../support/seeded-random.ts";

const T0 = Date.UTC(2026, 5, 15, 12);
const policy: BudgetPolicy = {
	tenant: { tokensPerDay: 100_000 },
	downgradeAt: 0.9,
	timeZone: "UTC",
};
const ask = (id: string, tokens: number): BudgetAsk => ({
	id,
	requested: { model: "m", promptTokens: 0, estimate: { tokens, nanoUsd: 0 } },
	policy,
});
const want = (id: string, tokens: number) => ({
	id,
	amount: { tokens, nanoUsd: 0 },
	spendForMs: 2000,
	reclaimAfterMs: 60_000,
});
const held = (book: BudgetBook, now = T0) => {
	const day = book.level(undefined, now, "UTC").day;
	return day.used.tokens + day.reserved.tokens;
};

describe("budget allowances", () => {
	it("take at most a quarter of the headroom below the downgrade threshold, and none once one request no longer fits", () => {
		const book = new BudgetBook();
		// Threshold 90,000: the first takes a quarter of it, the next a quarter of what is left.
		expect(book.grant(ask("a", 100), want("g1", 80_000), T0)?.amount.tokens).toBe(22_500);
		expect(book.grant(ask("b", 100), want("g2", 80_000), T0)?.amount.tokens).toBe(16_875);
		expect(book.grant(ask("c", 100), want("g3", 1_000), T0)?.amount.tokens).toBe(1_000);
		expect(held(book)).toBe(40_375);
		book.admit(ask("d", 49_300), T0);
		// 89,675 held: a quarter of the 325 left below the threshold is less than one request.
		expect(book.grant(ask("e", 100), want("g4", 1_000), T0)).toBeUndefined();
	});

	it("50 isolates spending allowances never hold or charge more than is left", () => {
		const random = seededRandom(5);
		const book = new BudgetBook();
		const wallets = Array.from({ length: 50 }, () => new BudgetWallet(2000, 16));
		let now = T0;
		let charged = 0;
		let grants = 0;
		let local = 0;
		const inFlight: { wallet: BudgetWallet; grantId: string; estimate: number }[] = [];
		for (let i = 0; i < 5000; i++) {
			now += Math.floor(random() * 3);
			const wallet = wallets[Math.floor(random() * wallets.length)] as BudgetWallet;
			const estimate = 20 + Math.floor(random() * 60);
			const spend = wallet.spend("t", { tokens: estimate, nanoUsd: 0 }, now);
			if (spend) {
				local++;
				inFlight.push({ wallet, grantId: spend.grantId, estimate });
			} else {
				const admitted = book.admit(ask(`r${i}`, estimate), now);
				if (admitted.kind === "reserved") {
					book.settle(`r${i}`, { tokens: estimate, nanoUsd: 0 });
					charged += estimate;
					const wanted = wallet.want("t", { tokens: estimate, nanoUsd: 0 }, now);
					if (wanted) {
						const grant = book.grant(ask(`r${i}`, estimate), want(`g${i}`, wanted.tokens), now);
						if (grant) {
							grants++;
							wallet.add("t", grant, now + 2000);
						}
					}
				}
			}
			while (inFlight.length > 0 && random() < 0.5) {
				const [done] = inFlight.splice(Math.floor(random() * inFlight.length), 1);
				if (!done) break;
				const actual = Math.floor(done.estimate * random());
				const grant = book.grantOf(done.grantId);
				if (grant) {
					book.settleSpend(
						done.grantId,
						grant.scope,
						{ tokens: done.estimate, nanoUsd: 0 },
						{ tokens: actual, nanoUsd: 0 },
					);
				}
				charged += actual;
				const back = done.wallet.ended(done.grantId);
				if (back) book.returnGrant(back.grantId, back.left, back.final);
			}
			for (const wallet of wallets) {
				for (const grant of [...book.grants]) {
					if (now >= grant.spendUntilMs) {
						const back = wallet.close(grant.id);
						if (back) book.returnGrant(back.grantId, back.left, back.final);
					}
				}
			}
			expect(held(book, now)).toBeLessThanOrEqual(100_000);
		}
		expect(grants).toBeGreaterThan(5);
		expect(local).toBeGreaterThan(500);
		expect(charged).toBeLessThanOrEqual(100_000);
	});

	it("what a request did not use and the rest at the end of the window go back", () => {
		const book = new BudgetBook();
		const wallet = new BudgetWallet(2000, 16);
		const grant = book.grant(ask("a", 100), want("g", 1000), T0);
		if (!grant) throw new Error("no grant");
		wallet.add("t", grant, T0 + 2000);
		const spend = wallet.spend("t", { tokens: 100, nanoUsd: 0 }, T0 + 1);
		if (!spend) throw new Error("no spend");
		expect(held(book)).toBe(1000);
		book.settleSpend(grant.id, grant.scope, spend.estimate, { tokens: 40, nanoUsd: 0 });
		expect(wallet.ended(grant.id)).toBeUndefined(); // still open
		expect(held(book)).toBe(940); // 40 used + 900 still held by the isolate; 60 went back
		const back = wallet.close(grant.id);
		expect(back).toEqual({ grantId: grant.id, left: { tokens: 900, nanoUsd: 0 }, final: true });
		if (back) book.returnGrant(back.grantId, back.left, back.final);
		expect(held(book)).toBe(40);
		expect([...book.grants]).toHaveLength(0);
	});

	it("a grant whose isolate vanished is reclaimed at its reclaim time", () => {
		const book = new BudgetBook();
		const grant = book.grant(ask("a", 100), want("g", 1000), T0);
		expect(book.reclaimGrants(T0 + 61_999)).toEqual([]);
		expect(book.nextGrantReclaimMs()).toBe(T0 + 62_000);
		expect(book.reclaimGrants(T0 + 62_000).map((g) => g.id)).toEqual([grant?.id]);
		expect(held(book)).toBe(0);
	});

	it("a restarted authority holds the saved grants until they are given back", () => {
		const book = new BudgetBook();
		const grant = book.grant(ask("a", 100), want("g", 1000), T0);
		if (!grant) throw new Error("no grant");
		book.settleSpend(
			grant.id,
			grant.scope,
			{ tokens: 100, nanoUsd: 0 },
			{ tokens: 100, nanoUsd: 0 },
		);
		const saved = JSON.parse(JSON.stringify([...book.grants]));
		const restarted = new BudgetBook(saved);
		restarted.addUsed("", "2026-06-15", { tokens: 100, nanoUsd: 0 });
		expect(held(restarted)).toBe(1000);
		restarted.returnGrant(grant.id, { tokens: 900, nanoUsd: 0 }, true);
		expect(held(restarted)).toBe(100);
	});
});

describe("the isolate's wallet", () => {
	const estimate = { tokens: 100, nanoUsd: 0 };

	it("asks once at a time, and spends from any open grant, the one ending soonest first", () => {
		const book = new BudgetBook();
		const wallet = new BudgetWallet(2000, 16);
		expect(wallet.want("t", estimate, T0)).toEqual({ tokens: 1600, nanoUsd: 0 });
		expect(wallet.want("t", estimate, T0)).toBeUndefined(); // its answer is on its way
		wallet.answered("t");
		const first = book.grant(ask("a", 100), want("g1", 200), T0);
		const second = book.grant(ask("b", 100), want("g2", 1600), T0 + 500);
		if (!first || !second) throw new Error("no grant");
		wallet.add("t", first, T0 + 2000);
		wallet.add("t", second, T0 + 2500);
		expect(wallet.spend("t", estimate, T0 + 600)?.grantId).toBe("g1");
		expect(wallet.spend("t", estimate, T0 + 600)?.grantId).toBe("g1");
		expect(wallet.spend("t", estimate, T0 + 600)?.grantId).toBe("g2");
		expect(wallet.spend("other", estimate, T0 + 600)).toBeUndefined();
		expect(wallet.spend("t", estimate, T0 + 2500)).toBeUndefined(); // both windows over
	});
});
