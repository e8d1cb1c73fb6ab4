// LearnedLimits: the provider's `remaining` read against what the pool admitted since, and the
// limits learned carried across a restart.
import { describe, expect, it } from "vitest";
import { LearnedLimits } from "../../src/core/limit-learning.ts";

const room = { requests: 100, tokens: 100_000 };

describe("reading the provider's remaining", () => {
	it("subtracts what the pool admitted after the answered request", () => {
		const learning = new LearnedLimits({ requestsPerMinute: 600, tokensPerMinute: 600_000 });
		learning.admitted("a", 100);
		learning.admitted("b", 100);
		learning.admitted("c", 100);
		// The provider answered "a" with 10 requests left; "b" and "c" went after it.
		const advice = learning.observe("a", { requests: { limit: 600, remaining: 10 } }, room);
		expect(advice?.lowerTo?.requests).toBe(8);
	});

	it("cannot read an answer to a lease it did not see admitted, nor the same one twice", () => {
		const learning = new LearnedLimits({ requestsPerMinute: 600, tokensPerMinute: 600_000 });
		expect(learning.observe("unknown", { requests: { remaining: 1 } }, room)).toBeUndefined();
		learning.admitted("a", 1);
		learning.forget("a");
		expect(learning.observe("a", { requests: { remaining: 1 } }, room)).toBeUndefined();
	});
});

describe("limits in force", () => {
	it("adopts a smaller advertised limit and keeps it across a snapshot", () => {
		const learning = new LearnedLimits({ requestsPerMinute: 600, tokensPerMinute: 600_000 });
		learning.admitted("a", 1);
		learning.observe("a", { requests: { limit: 420, remaining: 400 } }, room);
		expect(learning.current().requestsPerMinute).toBe(420);
		const restored = new LearnedLimits(
			{ requestsPerMinute: 600, tokensPerMinute: 600_000 },
			JSON.parse(JSON.stringify(learning.snapshot())),
		);
		expect(restored.current()).toEqual(learning.current());
	});

	it("an auto limit starts conservative and says so", () => {
		const learning = new LearnedLimits({ requestsPerMinute: "auto", tokensPerMinute: 90_000 });
		expect(learning.current()).toMatchObject({ requestsPerMinute: 50, tokensPerMinute: 90_000 });
		expect(learning.current().source).toMatch(/auto/);
	});
});
