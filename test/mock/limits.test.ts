// The mock enforces its own RPM and TPM like a provider: 429 in the provider's shape, an honest
// retry-after, and rate-limit headers that agree with what was charged. The clock is injected.
import { describe, expect, it } from "vitest";
import { anthropicMessage, chat, clockedMock, post, START_MS } from "./helpers.ts";

const CHAT = "/openai/v1/chat/completions";

describe("requests per minute", () => {
	it("refuses a burst beyond the limit, and the same request fits after exactly retry-after-ms", async () => {
		const { provider, clock } = clockedMock({ requestsPerMinute: 3 });
		for (let sent = 0; sent < 3; sent += 1) {
			expect((await post(provider, CHAT, chat())).status).toBe(200);
		}
		const refused = await post(provider, CHAT, chat());
		expect(refused.status).toBe(429);
		expect(await refused.json()).toEqual({
			error: {
				message: expect.stringContaining("requests per min (RPM): Limit 3"),
				type: "requests",
				param: null,
				code: "rate_limit_exceeded",
			},
		});
		// One request refills in 60 s / 3.
		expect(refused.headers.get("retry-after-ms")).toBe("20000");
		expect(refused.headers.get("retry-after")).toBe("20");

		clock.nowMs += 19_999;
		expect((await post(provider, CHAT, chat())).status).toBe(429);
		clock.nowMs += 1;
		expect((await post(provider, CHAT, chat())).status).toBe(200);
	});

	it("holds only burstSeconds of the limit when asked, still refilling at the per-minute rate", async () => {
		// 60 RPM with a 10 s burst: 10 at once, then one a second; the header still says 60.
		const { provider, clock } = clockedMock({ requestsPerMinute: 60, burstSeconds: 10 });
		for (let sent = 0; sent < 10; sent += 1) {
			expect((await post(provider, CHAT, chat())).status).toBe(200);
		}
		const refused = await post(provider, CHAT, chat());
		expect(refused.status).toBe(429);
		expect(refused.headers.get("retry-after-ms")).toBe("1000");
		expect(refused.headers.get("x-ratelimit-limit-requests")).toBe("60");
		clock.nowMs += 1000;
		expect((await post(provider, CHAT, chat())).status).toBe(200);
	});

	it("rounds retry-after up to whole seconds, at least 1", async () => {
		const { provider, clock } = clockedMock({ requestsPerMinute: 600 });
		for (let sent = 0; sent < 600; sent += 1) await post(provider, CHAT, chat());
		clock.nowMs += 30;
		const refused = await post(provider, CHAT, chat());
		expect(refused.status).toBe(429);
		expect(refused.headers.get("retry-after-ms")).toBe("70");
		expect(refused.headers.get("retry-after")).toBe("1");
	});
});

describe("tokens per minute", () => {
	it("charges prompt + completion tokens on arrival and refuses what does not fit", async () => {
		// Each request: 10 prompt + 10 completion tokens; 100 TPM fits five.
		const { provider, clock } = clockedMock({ tokensPerMinute: 100, completionTokens: 10 });
		for (let sent = 0; sent < 5; sent += 1) {
			expect((await post(provider, CHAT, chat(10))).status).toBe(200);
		}
		const refused = await post(provider, CHAT, chat(10));
		expect(refused.status).toBe(429);
		expect(await refused.json()).toMatchObject({
			error: { type: "tokens", code: "rate_limit_exceeded" },
		});
		// 20 tokens at 100 per minute refill in 12 s.
		expect(refused.headers.get("retry-after-ms")).toBe("12000");
		expect(refused.headers.get("retry-after")).toBe("12");

		clock.nowMs += 11_999;
		expect((await post(provider, CHAT, chat(10))).status).toBe(429);
		clock.nowMs += 1;
		expect((await post(provider, CHAT, chat(10))).status).toBe(200);
	});

	it("charges a smaller max_tokens, so a capped request fits where a full one does not", async () => {
		const { provider } = clockedMock({ tokensPerMinute: 30, completionTokens: 20 });
		expect((await post(provider, CHAT, chat(5))).status).toBe(200); // 25 tokens
		expect((await post(provider, CHAT, chat(1))).status).toBe(429); // 21 > 5 left
		expect((await post(provider, CHAT, chat(1, { max_tokens: 4 }))).status).toBe(200); // 5
	});

	it("refuses a request larger than the limit itself without a retry-after, since no wait helps", async () => {
		const { provider } = clockedMock({ tokensPerMinute: 50, completionTokens: 10 });
		const refused = await post(provider, CHAT, chat(100));
		expect(refused.status).toBe(429);
		expect(refused.headers.get("retry-after")).toBeNull();
		expect(await refused.json()).toMatchObject({
			error: { type: "tokens", message: expect.stringContaining("Request too large") },
		});
	});

	it("charges nothing for a refused request", async () => {
		const { provider } = clockedMock({
			requestsPerMinute: 10,
			tokensPerMinute: 100,
			completionTokens: 10,
		});
		const admitted = await post(provider, CHAT, chat(70)); // 80 tokens
		const refused = await post(provider, CHAT, chat(20)); // 30 > 20 left
		expect(refused.status).toBe(429);
		for (const name of ["x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens"]) {
			expect(refused.headers.get(name)).toBe(admitted.headers.get(name));
		}
		expect((await post(provider, CHAT, chat(10))).status).toBe(200); // 20 still fits
	});
});

describe("rate-limit headers", () => {
	it("OpenAI: limit, remaining and reset agree with what was charged", async () => {
		const { provider, clock } = clockedMock({
			requestsPerMinute: 60,
			tokensPerMinute: 6000,
			completionTokens: 10,
		});
		let last = new Response();
		for (let sent = 0; sent < 3; sent += 1) last = await post(provider, CHAT, chat(20));
		expect(Object.fromEntries(last.headers)).toMatchObject({
			"x-ratelimit-limit-requests": "60",
			"x-ratelimit-remaining-requests": "57",
			"x-ratelimit-reset-requests": "3s", // 3 requests at one per second
			"x-ratelimit-limit-tokens": "6000",
			"x-ratelimit-remaining-tokens": "5910",
			"x-ratelimit-reset-tokens": "900ms", // 90 tokens at 100 per second
		});
		clock.nowMs += 1500;
		const later = await post(provider, CHAT, chat(20));
		expect(later.headers.get("x-ratelimit-remaining-requests")).toBe("57"); // 1.5 back, 1 spent
		expect(later.headers.get("x-ratelimit-reset-requests")).toBe("2.5s");
	});

	it("OpenAI: long resets are Go durations", async () => {
		const { provider } = clockedMock({ requestsPerMinute: 1 });
		const response = await post(provider, CHAT, chat());
		expect(response.headers.get("x-ratelimit-reset-requests")).toBe("1m0s");
	});

	it("Anthropic: its own headers with RFC 3339 resets, and a 429 rate_limit_error", async () => {
		const { provider } = clockedMock({ requestsPerMinute: 2, tokensPerMinute: 1000 });
		await post(provider, "/anthropic/v1/messages", anthropicMessage(4, { max_tokens: 6 }));
		const second = await post(
			provider,
			"/anthropic/v1/messages",
			anthropicMessage(4, { max_tokens: 6 }),
		);
		expect(Object.fromEntries(second.headers)).toMatchObject({
			"anthropic-ratelimit-requests-limit": "2",
			"anthropic-ratelimit-requests-remaining": "0",
			"anthropic-ratelimit-requests-reset": new Date(START_MS + 60_000)
				.toISOString()
				.replace(".000Z", "Z"),
			"anthropic-ratelimit-tokens-limit": "1000",
			"anthropic-ratelimit-tokens-remaining": "980",
			"anthropic-ratelimit-tokens-reset": new Date(START_MS + 2_000)
				.toISOString()
				.replace(".000Z", "Z"), // 20 tokens at 1000/min: 1.2 s, rounded up
		});
		expect(second.headers.has("x-ratelimit-remaining-requests")).toBe(false);

		const refused = await post(provider, "/anthropic/v1/messages", anthropicMessage());
		expect(refused.status).toBe(429);
		expect(await refused.json()).toEqual({
			type: "error",
			error: {
				type: "rate_limit_error",
				message: expect.stringContaining("2 requests per minute"),
			},
		});
		expect(refused.headers.get("retry-after")).toBe("30");
		expect(refused.headers.has("retry-after-ms")).toBe(false);
	});
});

describe("changing the limits", () => {
	it("counts what was used against a new limit, so raising it gives room at once", async () => {
		const { provider } = clockedMock({ requestsPerMinute: 2 });
		await post(provider, CHAT, chat());
		await post(provider, CHAT, chat());
		expect((await post(provider, CHAT, chat())).status).toBe(429);
		provider.configure({ requestsPerMinute: 5 });
		const admitted = await post(provider, CHAT, chat());
		expect(admitted.status).toBe(200);
		expect(admitted.headers.get("x-ratelimit-remaining-requests")).toBe("2");
		provider.configure({ requestsPerMinute: 3 });
		expect((await post(provider, CHAT, chat())).status).toBe(429);
	});
});
