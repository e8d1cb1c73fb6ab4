// The mock's control surface: /_mock/* endpoints, stats, configure/reset, and options from env.
import { describe, expect, it } from "vitest";
import { createMockProvider, mockOptionsFromEnv } from "../../src/mock/provider.ts";
import { anthropicMessage, chat, clockedMock, get, post } from "./helpers.ts";

const CHAT = "/openai/v1/chat/completions";

describe("stats", () => {
	it("counts answers by status and the usage it reported, and remembers the last request", async () => {
		const provider = createMockProvider({ requestsPerMinute: 2, completionTokens: 5 });
		await post(provider, CHAT, chat(3), { authorization: "Bearer sk-a" });
		await post(provider, "/anthropic/v1/messages", anthropicMessage(2), { "x-api-key": "sk-b" });
		await post(provider, CHAT, chat(1));
		await post(provider, "/openai/v1/nowhere", {});

		const stats = await (await get(provider, "/_mock/stats")).json();
		expect(stats).toEqual({
			requests: 4,
			ok: 2,
			rateLimited: 1,
			byStatus: { "200": 2, "429": 1, "404": 1 },
			promptTokens: 5,
			completionTokens: 10,
			lastPath: "/openai/v1/nowhere",
			lastBody: chat(1),
		});
		expect(provider.stats()).toMatchObject({ lastApiKey: undefined, lastAuthorization: undefined });
		await post(provider, "/anthropic/v1/messages", anthropicMessage(), { "x-api-key": "sk-b" });
		expect(provider.stats().lastApiKey).toBe("sk-b");
	});

	it("stats() is a copy the caller cannot change", () => {
		const provider = createMockProvider();
		provider.stats().requests = 99;
		expect(provider.stats().requests).toBe(0);
	});
});

describe("control endpoints", () => {
	it("POST /_mock/config changes limits, latency and fault; GET /_mock/config shows them", async () => {
		const provider = createMockProvider();
		const configured = await post(provider, "/_mock/config", {
			requestsPerMinute: 1,
			completionTokens: 2,
		});
		expect(configured.status).toBe(200);
		expect(await configured.json()).toMatchObject({ requestsPerMinute: 1, completionTokens: 2 });
		expect((await post(provider, CHAT, chat())).status).toBe(200);
		expect((await post(provider, CHAT, chat())).status).toBe(429);

		await post(provider, "/_mock/config", { requestsPerMinute: 100, fault: "500" });
		expect((await post(provider, CHAT, chat())).status).toBe(500);
		expect(await (await get(provider, "/_mock/config")).json()).toMatchObject({
			requestsPerMinute: 100,
			fault: "500",
		});
	});

	it("POST /_mock/config sets and clears the API key", async () => {
		const provider = createMockProvider();
		await post(provider, "/_mock/config", { apiKey: "sk-x" });
		expect((await post(provider, CHAT, chat())).status).toBe(401);
		await post(provider, "/_mock/config", { apiKey: null });
		expect((await post(provider, CHAT, chat())).status).toBe(200);
	});

	it("POST /_mock/config refuses invalid values and changes nothing", async () => {
		const provider = createMockProvider({ requestsPerMinute: 7 });
		for (const body of [{ requestsPerMinute: -1 }, { fault: "fire" }, { unknownOption: 1 }]) {
			expect((await post(provider, "/_mock/config", body)).status).toBe(400);
		}
		expect(await (await get(provider, "/_mock/config")).json()).toMatchObject({
			requestsPerMinute: 7,
		});
		expect(() => provider.configure({ latencyMs: -5 })).toThrow("latencyMs");
	});

	it("POST /_mock/reset zeroes the counters and refills the buckets, keeping the options", async () => {
		const { provider } = clockedMock({ requestsPerMinute: 1 });
		await post(provider, CHAT, chat());
		expect((await post(provider, CHAT, chat())).status).toBe(429);
		const reset = await post(provider, "/_mock/reset", {});
		expect(reset.status).toBe(204);
		expect(provider.stats()).toMatchObject({ requests: 0, ok: 0, rateLimited: 0, byStatus: {} });
		const again = await post(provider, CHAT, chat());
		expect(again.status).toBe(200);
		expect(again.headers.get("x-ratelimit-limit-requests")).toBe("1");
	});

	it("control paths are not counted as provider requests", async () => {
		const provider = createMockProvider();
		await get(provider, "/_mock/stats");
		await post(provider, "/_mock/config", {});
		expect(provider.stats().requests).toBe(0);
	});
});

describe("mockOptionsFromEnv", () => {
	it("reads MOCK_* strings or numbers and leaves absent ones out", () => {
		expect(
			mockOptionsFromEnv({
				MOCK_RPM: "120",
				MOCK_TPM: 5000,
				MOCK_LATENCY_MS: "15",
				MOCK_CHUNK_DELAY_MS: "",
				MOCK_API_KEY: "sk-dev",
				MOCK_FAULT: "slow-stream",
				UNRELATED: "x",
			}),
		).toEqual({
			requestsPerMinute: 120,
			tokensPerMinute: 5000,
			latencyMs: 15,
			apiKey: "sk-dev",
			fault: "slow-stream",
		});
		expect(mockOptionsFromEnv({})).toEqual({});
	});

	it("throws on a value that is not valid, naming it", () => {
		expect(() => mockOptionsFromEnv({ MOCK_RPM: "lots" })).toThrow("requestsPerMinute");
		expect(() => mockOptionsFromEnv({ MOCK_FAULT: "boom" })).toThrow("fault");
	});
});
