// Unit tests of limit learning, fed with real provider headers as the providers layer parses them:
// lowering to the provider's room, adopting advertised limits, "auto" pools, and garbage.
import { describe, expect, it } from "vitest";
import {
	AUTO_START_LIMITS,
	learnLimits,
	type PoolBelief,
	startingLimits,
} from "../../src/core/limit-learning.ts";
import { providerFor } from "../../src/providers/index.ts";
import type { RateLimitInfo } from "../../src/providers/types.ts";
import anthropicHeaders from "../fixtures/providers/anthropic/headers_ratelimit.json";
import openaiHeaders from "../fixtures/providers/openai/headers_ratelimit.json";

const NOW_MS = Date.parse("2026-02-25T20:02:31Z");
const NOTHING_SINCE = { requests: 0, tokens: 0 };

function parsed(kind: "openai" | "anthropic", headers: object): RateLimitInfo {
	return providerFor(kind).parseRateLimitHeaders(
		new Headers(Object.entries(headers) as [string, string][]),
		NOW_MS,
	);
}

function pool(overrides: Partial<PoolBelief> = {}): PoolBelief {
	return {
		configured: { requestsPerMinute: 600, tokensPerMinute: 100_000 },
		current: { requestsPerMinute: 600, tokensPerMinute: 100_000 },
		available: { requests: 100, tokens: 16_000 },
		...overrides,
	};
}

const AUTO: PoolBelief["configured"] = { requestsPerMinute: "auto", tokensPerMinute: "auto" };

describe("limit learning", () => {
	it("starts an auto pool conservatively, and says so", () => {
		expect(startingLimits(AUTO)).toEqual({
			...AUTO_START_LIMITS,
			source:
				"auto: a conservative 50 requests and 10000 tokens a minute until the provider's first answer",
		});
		expect(startingLimits({ requestsPerMinute: 500, tokensPerMinute: "auto" })).toMatchObject({
			requestsPerMinute: 500,
			tokensPerMinute: 10_000,
		});
		expect(startingLimits({ requestsPerMinute: 500, tokensPerMinute: 30_000 })).toEqual({
			requestsPerMinute: 500,
			tokensPerMinute: 30_000,
			source: "configured",
		});
	});

	it("adopts the provider's advertised limits from an auto pool's first answer", () => {
		const info = parsed("openai", openaiHeaders.observed_2024_gpt4o.headers);
		const advice = learnLimits(
			info,
			NOTHING_SINCE,
			pool({
				configured: AUTO,
				current: AUTO_START_LIMITS,
				available: { requests: 8, tokens: 1_600 },
			}),
		);
		expect(advice).toEqual({
			adopt: { requestsPerMinute: 500, tokensPerMinute: 30_000 },
			source: "provider: requests 499/500 left, tokens 29996/30000 left",
		});
		// Once adopted, the same limits change nothing.
		const again = learnLimits(
			info,
			NOTHING_SINCE,
			pool({ configured: AUTO, current: { requestsPerMinute: 500, tokensPerMinute: 30_000 } }),
		);
		expect(again.adopt).toBeUndefined();
	});

	it("follows a limit that changes: auto both ways, a configured number never above itself", () => {
		const advertised = (requests: number) => ({ requests: { limit: requests, remaining: 0 } });
		const current = { requestsPerMinute: 600, tokensPerMinute: 100_000 };
		const belief = (configured: PoolBelief["configured"], requestsPerMinute: number) =>
			pool({ configured, current: { ...current, requestsPerMinute } });

		expect(learnLimits(advertised(300), NOTHING_SINCE, belief(AUTO, 600)).adopt).toEqual({
			requestsPerMinute: 300,
		});
		expect(learnLimits(advertised(5_000), NOTHING_SINCE, belief(AUTO, 300)).adopt).toEqual({
			requestsPerMinute: 5_000,
		});
		const configured = { requestsPerMinute: 600, tokensPerMinute: 100_000 };
		// Downgraded account: the configured 600 drops to the advertised 300...
		expect(learnLimits(advertised(300), NOTHING_SINCE, belief(configured, 600)).adopt).toEqual({
			requestsPerMinute: 300,
		});
		// ...and comes back to 600, not 5,000, when the provider advertises more again.
		expect(learnLimits(advertised(5_000), NOTHING_SINCE, belief(configured, 300)).adopt).toEqual({
			requestsPerMinute: 600,
		});
		expect(
			learnLimits(advertised(5_000), NOTHING_SINCE, belief(configured, 600)).adopt,
		).toBeUndefined();
	});

	it("lowers a bucket to the provider's room less what was admitted after that request", () => {
		const reported = { requests: { limit: 600, remaining: 40 }, tokens: { remaining: 9_000 } };
		expect(learnLimits(reported, NOTHING_SINCE, pool()).lowerTo).toEqual({
			requests: 40,
			tokens: 9_000,
		});
		expect(learnLimits(reported, { requests: 15, tokens: 3_000 }, pool()).lowerTo).toEqual({
			requests: 25,
			tokens: 6_000,
		});
		expect(learnLimits(reported, { requests: 90, tokens: 20_000 }, pool()).lowerTo).toEqual({
			requests: 0,
			tokens: 0,
		});
		// More room than the pool believes: nothing to lower.
		const roomy = { requests: { remaining: 400 }, tokens: { remaining: 50_000 } };
		expect(learnLimits(roomy, NOTHING_SINCE, pool()).lowerTo).toBeUndefined();
	});

	it("does not lower twice for the same in-flight work", () => {
		// The pool admits A, then B and C; the provider answers A before B and C reach it.
		let available = 97; // 100, less A, B and C
		const belief = () => pool({ available: { requests: available, tokens: 16_000 } });
		const answerA = learnLimits(
			{ requests: { remaining: 50 } },
			{ requests: 2, tokens: 0 },
			belief(),
		);
		available = answerA.lowerTo?.requests ?? available;
		expect(available).toBe(48);
		// B's answer counts B (49 left) and knows only of C since: the same 48, nothing more to do.
		const answerB = learnLimits(
			{ requests: { remaining: 49 } },
			{ requests: 1, tokens: 0 },
			belief(),
		);
		expect(answerB.lowerTo).toBeUndefined();
		const answerC = learnLimits({ requests: { remaining: 48 } }, NOTHING_SINCE, belief());
		expect(answerC.lowerTo).toBeUndefined();
	});

	it("maps Anthropic's input and output windows onto the pool's one token bucket", () => {
		const recorded = parsed("anthropic", anthropicHeaders.recorded_200_2026.headers);
		const advice = learnLimits(
			recorded,
			NOTHING_SINCE,
			pool({
				configured: AUTO,
				current: AUTO_START_LIMITS,
				available: { requests: 8, tokens: 50_000 },
			}),
		);
		// Its limit is input + output (30,000 + 8,000, as Anthropic's own tokens window says); its
		// room is the share left of the most used window (28,000 of 30,000) of that sum. Its 50
		// requests a minute are the auto start already: nothing to adopt there.
		expect(advice).toEqual({
			adopt: { tokensPerMinute: 38_000 },
			lowerTo: { tokens: 35_466 },
			source:
				"provider: requests 49/50 left, tokens 36000/38000 left, input tokens 28000/30000 left, output tokens 8000/8000 left, so 35466 tokens of room",
		});

		// A real 429: input exhausted while the combined window still shows the output tokens.
		const limited = parsed(
			"anthropic",
			anthropicHeaders.observed_429_2025_with_retry_after.headers,
		);
		expect(learnLimits(limited, NOTHING_SINCE, pool()).lowerTo).toEqual({ tokens: 0 });

		// Without the combined window or the limits, each window's remaining still bounds the room.
		expect(
			learnLimits(
				{ inputTokens: { remaining: 900 }, outputTokens: { remaining: 4_000 } },
				NOTHING_SINCE,
				pool(),
			).lowerTo,
		).toEqual({ tokens: 900 });
		expect(
			learnLimits(
				{
					inputTokens: { limit: 30_000, remaining: 3_000 },
					outputTokens: { limit: 8_000, remaining: 8_000 },
				},
				NOTHING_SINCE,
				pool({ configured: AUTO }),
			),
		).toMatchObject({ adopt: { tokensPerMinute: 38_000 }, lowerTo: { tokens: 3_800 } });
	});

	it("ignores garbage, and says when there was nothing to learn", () => {
		const garbage = {
			requests: { limit: 0, remaining: -1 },
			tokens: { limit: Number.NaN, remaining: 1.5 },
			inputTokens: { limit: 100, remaining: 500 }, // more left than the limit: inconsistent
			outputTokens: null,
		} as unknown as RateLimitInfo;
		expect(learnLimits(garbage, NOTHING_SINCE, pool({ configured: AUTO }))).toEqual({
			source: "no usable rate-limit headers",
		});
		expect(learnLimits({}, NOTHING_SINCE, pool())).toEqual({
			source: "no usable rate-limit headers",
		});
		const odd = { requests: { limit: Number.POSITIVE_INFINITY, remaining: 3 } };
		expect(
			learnLimits(odd, { requests: Number.NaN, tokens: -4 }, pool({ configured: AUTO })),
		).toEqual({
			lowerTo: { requests: 3 },
			source: "provider: requests remaining 3",
		});
	});
});
