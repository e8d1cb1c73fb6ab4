// Unit tests of the FIFO wait queue: order, retries first, removal, deadlines, demand ahead.
import { describe, expect, it } from "vitest";
import { type Waiting, WaitQueue } from "../../src/core/wait-queue.ts";

function waiting(ticketId: string, overrides: Partial<Waiting> = {}): Waiting {
	return { ticketId, model: "m", tokens: 10, deadlineMs: 1_000_000, ...overrides };
}

function drain(queue: WaitQueue<Waiting>): string[] {
	const ids: string[] = [];
	for (let item = queue.shift(); item; item = queue.shift()) ids.push(item.ticketId);
	return ids;
}

describe("wait queue", () => {
	it("is first in, first out, with retries ahead of first attempts", () => {
		const queue = new WaitQueue<Waiting>();
		expect(queue.push(waiting("a"), 0)).toBe(1);
		expect(queue.push(waiting("b"), 1)).toBe(2);
		expect(queue.push(waiting("r1", { retry: true }), 2)).toBe(1);
		expect(queue.push(waiting("c"), 3)).toBe(4);
		expect(queue.push(waiting("r2", { retry: true }), 4)).toBe(2);
		expect(queue.size).toBe(5);
		expect(queue.oldestEnqueuedMs()).toBe(0);
		expect(drain(queue)).toEqual(["r1", "r2", "a", "b", "c"]);
		expect(queue.size).toBe(0);
		expect(queue.oldestEnqueuedMs()).toBeUndefined();
	});

	it("removes from the middle and the head, once", () => {
		const queue = new WaitQueue<Waiting>();
		for (const id of ["a", "b", "c", "d"]) queue.push(waiting(id), 0);
		expect(queue.remove("b")?.ticketId).toBe("b");
		expect(queue.remove("b")).toBeUndefined();
		expect(queue.remove("a")?.ticketId).toBe("a");
		expect(queue.has("a")).toBe(false);
		expect(queue.peek()?.ticketId).toBe("c");
		expect(drain(queue)).toEqual(["c", "d"]);
	});

	it("keeps order through long churn in a queue that never empties", () => {
		const queue = new WaitQueue<Waiting>();
		let pushed = 0;
		let shifted = 0;
		for (let round = 0; round < 5_000; round++) {
			queue.push(waiting(`w${pushed++}`), round);
			queue.push(waiting(`w${pushed++}`), round);
			expect(queue.shift()?.ticketId).toBe(`w${shifted++}`);
		}
		expect(queue.size).toBe(5_000);
		expect(queue.peek()?.ticketId).toBe(`w${shifted}`);
	});

	it("finds deadlines in time order and skips waiters that left", () => {
		const queue = new WaitQueue<Waiting>();
		queue.push(waiting("late", { deadlineMs: 300 }), 0);
		queue.push(waiting("soon", { deadlineMs: 100 }), 0);
		queue.push(waiting("gone", { deadlineMs: 50 }), 0);
		queue.remove("gone");
		expect(queue.earliestDeadlineMs()).toBe(100);
		expect(queue.popOverdue(99)).toBeUndefined();
		expect(queue.popOverdue(100)?.ticketId).toBe("soon");
		expect(queue.popOverdue(100)).toBeUndefined();
		expect(queue.earliestDeadlineMs()).toBe(300);
		expect(queue.size).toBe(1);
		queue.shift();
		expect(queue.earliestDeadlineMs()).toBeUndefined();
	});

	it("sums the demand ahead of a new ask, per model and per line", () => {
		const queue = new WaitQueue<Waiting>();
		queue.push(waiting("a", { model: "x", tokens: 100 }), 0);
		queue.push(waiting("b", { model: "y", tokens: 30 }), 0);
		queue.push(waiting("r", { model: "x", tokens: 7, retry: true }), 0);
		expect(queue.demandAhead(false, "x")).toEqual({
			requests: 3,
			tokens: 137,
			modelRequests: 2,
			modelTokens: 107,
		});
		expect(queue.demandAhead(true, "y")).toEqual({
			requests: 1,
			tokens: 7,
			modelRequests: 0,
			modelTokens: 0,
		});
		queue.remove("a");
		expect(queue.demandAhead(false, "x")).toEqual({
			requests: 2,
			tokens: 37,
			modelRequests: 1,
			modelTokens: 7,
		});
	});
});
