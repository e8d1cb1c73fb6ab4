// Unit tests of the fair queue on its own: the walk's order, fair tags by weight, aging,
// parking, the shedding victim and the demand ahead of a new ask.
import { describe, expect, it } from "vitest";
import { FairQueue, type Verdict, type Waiter } from "../../src/core/fair-queue.ts";

const STEP_MS = 10_000;

function add(
	queue: FairQueue,
	ticketId: string,
	fields: {
		tenant?: string;
		rank?: number;
		submittedMs?: number;
		tokens?: number;
		weight?: number;
		retry?: boolean;
	} = {},
): Waiter {
	const { weight = 1, ...rest } = fields;
	return queue.add(
		{
			ticketId,
			tenant: "t",
			model: "m",
			tokens: 10,
			rank: 2,
			retry: false,
			submittedMs: 0,
			deadlineMs: 1e12,
			...rest,
		},
		weight,
	);
}

/** Takes waiters in order, one walk each, charging every admission 1. */
function takeAll(queue: FairQueue, visit: (waiter: Waiter) => Verdict = () => "take"): string[] {
	const taken: string[] = [];
	for (
		let waiter = queue.walk(1, 1, visit, () => 1);
		waiter;
		waiter = queue.walk(1, 1, visit, () => 1)
	) {
		taken.push(waiter.ticketId);
	}
	return taken;
}

describe("fair queue", () => {
	it("walks classes first, then tenants by fair tag, then each tenant's line in order", () => {
		const queue = new FairQueue(STEP_MS);
		add(queue, "a-normal-1", { tenant: "a" });
		add(queue, "a-normal-2", { tenant: "a", submittedMs: 1 });
		add(queue, "b-normal-1", { tenant: "b", submittedMs: 2 });
		add(queue, "b-low", { tenant: "b", rank: 3 });
		add(queue, "a-high", { tenant: "a", rank: 1, submittedMs: 5 });
		add(queue, "a-retry", { tenant: "a", retry: true, submittedMs: 9 });
		queue.advance(9);
		expect(takeAll(queue)).toEqual([
			"a-high",
			"a-retry",
			"b-normal-1",
			"a-normal-1",
			"a-normal-2",
			"b-low",
		]);
		expect(queue.size).toBe(0);
	});

	it("shares a class by weight", () => {
		const queue = new FairQueue(STEP_MS);
		for (let i = 0; i < 30; i++) {
			add(queue, `heavy${i}`, { tenant: "heavy", weight: 2, submittedMs: i });
			add(queue, `light${i}`, { tenant: "light", weight: 1, submittedMs: i });
		}
		const firstThirty = takeAll(queue).slice(0, 30);
		expect(firstThirty.filter((id) => id.startsWith("heavy"))).toHaveLength(20);
	});

	it("raises waiters a class per step of waiting, and says when the next rise comes", () => {
		const queue = new FairQueue(STEP_MS);
		add(queue, "low", { rank: 3 });
		expect(queue.tierAt(3, 0, 19_999)).toBe(2);
		expect(queue.tierAt(3, 0, 20_000)).toBe(1);
		expect(queue.tierAt(3, 0, 1e9)).toBe(0);
		expect(queue.upcomingPromotions(5)).toMatchObject([{ atMs: 10_000, tier: 2 }]);
		queue.advance(25_000);
		add(queue, "high", { rank: 1, submittedMs: 25_000 });
		expect(queue.upcomingPromotions(5).map(({ atMs }) => atMs)).toEqual([30_000, 35_000]);
		expect(takeAll(queue)).toEqual(["low", "high"]);
	});

	it("parks a tenant's tier until unpark, walking past it meanwhile", () => {
		const queue = new FairQueue(STEP_MS);
		const blocked = add(queue, "blocked", { tenant: "a", rank: 0 });
		add(queue, "free", { tenant: "b", rank: 3 });
		const visit = (waiter: Waiter): Verdict => (waiter.tenant === "a" ? "park" : "take");
		expect(takeAll(queue, visit)).toEqual(["free"]);
		expect(queue.isParked(blocked)).toBe(true);
		queue.unpark("a");
		expect(queue.isParked(blocked)).toBe(false);
		expect(takeAll(queue)).toEqual(["blocked"]);
	});

	it("chooses the lowest-class, newest waiter to shed, pool-wide or within a tenant", () => {
		const queue = new FairQueue(STEP_MS);
		add(queue, "a-low-old", { tenant: "a", rank: 3, submittedMs: 0 });
		add(queue, "a-low-new", { tenant: "a", rank: 3, submittedMs: 5 });
		add(queue, "b-normal", { tenant: "b", rank: 2, submittedMs: 9 });
		add(queue, "c-low", { tenant: "c", rank: 3, submittedMs: 4 });
		expect(queue.victim()?.ticketId).toBe("a-low-new");
		expect(queue.victim("b")?.ticketId).toBe("b-normal");
		expect(queue.victim("c")?.ticketId).toBe("c-low");
		expect(queue.victim("nobody")).toBeUndefined();
	});

	it("ages a line from when its front came to the front, not from its submission", () => {
		const queue = new FairQueue(STEP_MS);
		for (let i = 0; i < 3; i++) add(queue, `backlog${i}`, { tenant: "a", submittedMs: 0 });
		add(queue, "other", { tenant: "b", submittedMs: 15_000 });
		queue.advance(15_000);
		// The front of a's line has waited 15 s: it stands with the highs.
		expect(takeAll(queue, (waiter) => (waiter.ticketId === "backlog0" ? "take" : "stop"))).toEqual([
			"backlog0",
		]);
		// The next of a's is at the front from now on: no head start over b's.
		queue.advance(16_000);
		expect(queue.lineTierAt(queue.remove("other") as Waiter, 16_000)).toBe(2);
		add(queue, "other2", { tenant: "b", submittedMs: 16_000 });
		expect(queue.upcomingPromotions(5).map(({ atMs }) => atMs)).toEqual([25_000, 26_000]);
	});

	it("sums the demand ahead of a new ask: higher classes, its line, others' fair share", () => {
		const queue = new FairQueue(STEP_MS);
		add(queue, "high", { tenant: "x", rank: 1, tokens: 100 });
		add(queue, "own", { tenant: "a", tokens: 10 });
		for (let i = 0; i < 10; i++) add(queue, `other${i}`, { tenant: "b", tokens: 10 });
		add(queue, "low", { tenant: "a", rank: 3, tokens: 1_000 });
		const query = {
			rank: 2,
			tenant: "a",
			weight: 1,
			model: "m",
			tokens: 10,
			retry: false,
			withinMs: 0,
		};
		const costOf = (requests: number, tokens: number) => requests + tokens / 1_000;
		// high, own, and as much of b's as a's two turns (own and itself): two.
		expect(queue.ahead(query, costOf)).toMatchObject({ requests: 4, tenantRequests: 1 });
		// Waiting a step, the front of each lower line (one: a's low) rises past it.
		expect(queue.ahead({ ...query, withinMs: STEP_MS }, costOf)).toMatchObject({
			requests: 5,
			tenantRequests: 2,
			tenantTokens: 1_010,
		});
		expect(queue.all("a", "m")).toMatchObject({ requests: 13, tenantRequests: 2 });
	});
});
