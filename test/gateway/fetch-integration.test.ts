// Through the Worker: every route, both providers, streaming and not, against the mock provider.
import { env, exports } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { installMockUpstream } from "../support/mock-upstream.ts";
import { TEST_KEYS, TEST_PROVIDER_KEY } from "../support/test-config.ts";

let upstream: ReturnType<typeof installMockUpstream>;
beforeEach(() => {
	upstream = installMockUpstream();
});
afterEach(() => upstream.restore());

function call(
	path: string,
	init: {
		body?: unknown;
		key?: string | null;
		headers?: Record<string, string>;
		method?: string;
	} = {},
) {
	const headers = new Headers(init.headers);
	if (init.key !== null) headers.set("authorization", `Bearer ${init.key ?? TEST_KEYS.teamA}`);
	if (init.body !== undefined) headers.set("content-type", "application/json");
	return exports.default.fetch(
		new Request(`http://tollbooth.test${path}`, {
			method: init.method ?? (init.body === undefined ? "GET" : "POST"),
			headers,
			body:
				init.body === undefined
					? undefined
					: typeof init.body === "string"
						? init.body
						: JSON.stringify(init.body),
		}),
	);
}

const chat = {
	model: "gpt-4o-mini",
	messages: [{ role: "user", content: "Say hello" }],
	max_tokens: 32,
};
const message = {
	model: "claude-sonnet-4-5",
	max_tokens: 32,
	messages: [{ role: "user", content: "Say hello" }],
};

/** SSE data payloads of a stream, in order. */
async function sseData(response: Response): Promise<string[]> {
	const text = await response.text();
	return text
		.split(/\n\n/)
		.flatMap((event) => event.split("\n").filter((line) => line.startsWith("data:")))
		.map((line) => line.slice(5).trim());
}

async function inFlight(pool: string): Promise<number> {
	return (await env.POOL.getByName(pool).status()).inFlight;
}

/** Releases happen after the response (waitUntil): wait for the pool to settle. */
async function eventuallyIdle(pool: string): Promise<void> {
	for (let i = 0; i < 50 && (await inFlight(pool)) > 0; i++)
		await new Promise((r) => setTimeout(r, 10));
	expect(await inFlight(pool)).toBe(0);
}

describe("OpenAI routes", () => {
	it("chat completions: answer, usage, and the pool's rate-limit view in the headers", async () => {
		const response = await call("/openai/v1/chat/completions", { body: chat });
		expect(response.status).toBe(200);
		const body = (await response.json()) as { object: string; usage: { prompt_tokens: number } };
		expect(body.object).toBe("chat.completion");
		expect(body.usage.prompt_tokens).toBeGreaterThan(0);
		expect(response.headers.get("x-ratelimit-limit-requests")).toBe("6000");
		expect(Number(response.headers.get("x-ratelimit-remaining-requests"))).toBeLessThan(1000);
		expect(response.headers.get("x-ratelimit-reset-requests")).toMatch(/^\d+(ms|s)|\d+m[\d.]+s$/);
		expect(response.headers.get("x-ratelimit-limit-tokens")).toBe("6000000");
		expect(response.headers.get("ratelimit-policy")).toBe(
			'"requests";q=6000;w=60, "tokens";q=6000000;w=60',
		);
		expect(response.headers.get("ratelimit")).toMatch(
			/^"requests";r=\d+;t=\d+, "tokens";r=\d+;t=\d+$/,
		);
		expect(response.headers.get("x-tollbooth-queue-ms")).toMatch(/^\d+$/);
		expect(response.headers.get("x-tollbooth-pool")).toBe("openai");
		expect(response.headers.get("x-tollbooth-retries")).toBe("0");
		await eventuallyIdle("openai");
	});

	it("the provider sees the pool's key, never the caller's", async () => {
		await (await call("/openai/v1/chat/completions", { body: chat })).text();
		await (
			await call("/anthropic/v1/messages", {
				body: message,
				key: null,
				headers: { "x-api-key": TEST_KEYS.teamA },
			})
		).text();
		expect(upstream.sent).toHaveLength(2);
		const [toOpenai, toAnthropic] = upstream.sent;
		expect(toOpenai?.headers.get("authorization")).toBe(`Bearer ${TEST_PROVIDER_KEY}`);
		expect(toAnthropic?.headers.get("x-api-key")).toBe(TEST_PROVIDER_KEY);
		expect(toAnthropic?.headers.get("authorization")).toBeNull();
		for (const { headers } of upstream.sent) {
			expect([...headers.values()].join("\n")).not.toContain(TEST_KEYS.teamA);
		}
	});

	it("streaming chat: usage is metered with include_usage added, and that extra chunk is not shown", async () => {
		const response = await call("/openai/v1/chat/completions", { body: { ...chat, stream: true } });
		expect(response.headers.get("content-type")).toContain("text/event-stream");
		expect(response.headers.get("x-ratelimit-remaining-requests")).not.toBeNull();
		const data = await sseData(response);
		expect(data.at(-1)).toBe("[DONE]");
		const chunks = data
			.slice(0, -1)
			.map((payload) => JSON.parse(payload) as { choices: unknown[]; usage?: unknown });
		expect(chunks.length).toBeGreaterThan(1);
		expect(chunks.every((chunk) => chunk.choices.length > 0)).toBe(true);
		const sentBody = JSON.parse(upstream.sent[0]?.body ?? "{}") as {
			stream_options?: { include_usage?: boolean };
		};
		expect(sentBody.stream_options?.include_usage).toBe(true);
		await eventuallyIdle("openai");
	});

	it("streaming chat: a caller that asked for usage gets the usage chunk", async () => {
		const response = await call("/openai/v1/chat/completions", {
			body: { ...chat, stream: true, stream_options: { include_usage: true } },
		});
		const data = await sseData(response);
		const last = JSON.parse(data.at(-2) ?? "{}") as {
			choices: unknown[];
			usage: { completion_tokens: number };
		};
		expect(last.choices).toEqual([]);
		expect(last.usage.completion_tokens).toBeGreaterThan(0);
	});

	it("completions, embeddings, responses (plain and streamed), and a passed-through GET", async () => {
		const completion = await call("/openai/v1/completions", {
			body: { model: "gpt-3.5-turbo-instruct", prompt: "Hi", max_tokens: 8 },
		});
		expect(completion.status).toBe(200);
		expect(((await completion.json()) as { object: string }).object).toBe("text_completion");

		const embedding = await call("/openai/v1/embeddings", {
			body: { model: "text-embedding-3-small", input: ["a", "b"] },
		});
		expect(embedding.status).toBe(200);
		expect(((await embedding.json()) as { data: unknown[] }).data).toHaveLength(2);

		const response = await call("/openai/v1/responses", {
			body: { model: "gpt-4o-mini", input: "Hi", max_output_tokens: 16 },
		});
		expect(response.status).toBe(200);
		expect(((await response.json()) as { object: string }).object).toBe("response");

		const streamed = await call("/openai/v1/responses", {
			body: { model: "gpt-4o-mini", input: "Hi", stream: true },
		});
		const events = await sseData(streamed);
		expect(events.some((payload) => payload.includes('"response.completed"'))).toBe(true);

		const models = await call("/openai/v1/models");
		expect(models.status).toBe(200);
		expect(((await models.json()) as { data: unknown[] }).data.length).toBeGreaterThan(0);
		await eventuallyIdle("openai");
	});

	it("a request's query reaches the provider as sent, under the pool's base URL", async () => {
		const models = await call("/openai/v1/models?limit=2&after=model-a%20b");
		expect(models.status).toBe(200);
		expect(upstream.sent.at(-1)?.url).toMatch(/\/openai\/v1\/models\?limit=2&after=model-a%20b$/);
		await eventuallyIdle("openai");
	});
});

describe("Anthropic routes", () => {
	it("messages, plain and streamed, with the SDK's x-api-key", async () => {
		const plain = await call("/anthropic/v1/messages", {
			body: message,
			key: null,
			headers: { "x-api-key": TEST_KEYS.teamA },
		});
		expect(plain.status).toBe(200);
		const body = (await plain.json()) as { type: string; usage: { output_tokens: number } };
		expect(body.type).toBe("message");
		expect(body.usage.output_tokens).toBeGreaterThan(0);
		expect(plain.headers.get("x-ratelimit-limit-requests")).toBe("6000");

		const streamed = await call("/anthropic/v1/messages", { body: { ...message, stream: true } });
		expect(streamed.headers.get("content-type")).toContain("text/event-stream");
		const events = (await sseData(streamed)).map(
			(payload) => (JSON.parse(payload) as { type: string }).type,
		);
		expect(events[0]).toBe("message_start");
		expect(events.at(-1)).toBe("message_stop");
		await eventuallyIdle("anthropic");
	});

	it("passes other /anthropic/v1/* through", async () => {
		const models = await call("/anthropic/v1/models");
		expect(models.status).toBe(200);
	});
});

describe("errors, in the provider's own shape", () => {
	type OpenAIError = { error: { message: string; type: string } };
	type AnthropicError = { type: "error"; error: { type: string; message: string } };

	it("401 for an unknown or missing key, in each provider's shape", async () => {
		const openai = await call("/openai/v1/chat/completions", { body: chat, key: "not-a-key" });
		expect(openai.status).toBe(401);
		expect(((await openai.json()) as OpenAIError).error.message).toMatch(/Unknown gateway key/);
		const anthropic = await call("/anthropic/v1/messages", { body: message, key: null });
		expect(anthropic.status).toBe(401);
		const body = (await anthropic.json()) as AnthropicError;
		expect(body.type).toBe("error");
		expect(body.error.type).toBe("authentication_error");
		expect(upstream.sent).toHaveLength(0);
	});

	it("403 for a pool the tenant may not use; 404 for an unknown pool or route", async () => {
		expect(
			(await call("/anthropic/v1/messages", { body: message, key: TEST_KEYS.teamB })).status,
		).toBe(403);
		const unknownPool = await call("/nope/v1/chat/completions", { body: chat });
		expect(unknownPool.status).toBe(404);
		expect(((await unknownPool.json()) as OpenAIError).error.message).toMatch(
			/No pool named "nope".*openai, anthropic/,
		);
		expect((await call("/favicon.ico")).status).toBe(404);
	});

	it("400 for bad JSON, a missing model, a bad x-priority; 413 for a body over the maximum", async () => {
		const badJson = await call("/openai/v1/chat/completions", { body: "{not json" });
		expect(badJson.status).toBe(400);
		expect(((await badJson.json()) as OpenAIError).error.message).toMatch(/not valid JSON/);
		const noModel = await call("/openai/v1/chat/completions", { body: { messages: [] } });
		expect(noModel.status).toBe(400);
		expect(((await noModel.json()) as OpenAIError).error.message).toMatch(/model/);
		const badPriority = await call("/openai/v1/chat/completions", {
			body: chat,
			headers: { "x-priority": "urgent" },
		});
		expect(badPriority.status).toBe(400);
		const huge = await call("/openai/v1/chat/completions", {
			body: { ...chat, messages: [{ role: "user", content: "x".repeat(70_000) }] },
		});
		expect(huge.status).toBe(413);
		expect(upstream.sent).toHaveLength(0);
	});

	it("400 at once for a request whose estimate can never fit the pool's token capacity", async () => {
		const response = await call("/tight/v1/chat/completions", {
			body: { ...chat, max_tokens: 50_000 },
		});
		expect(response.status).toBe(400);
		expect(((await response.json()) as OpenAIError).error.message).toMatch(
			/20,000 tokens that this pool.s limits\.burstTokens/,
		);
		expect(upstream.sent).toHaveLength(0);
	});

	it("500 naming the secret when a pool's provider key is not set", async () => {
		const response = await call("/nokey/v1/chat/completions", { body: chat });
		expect(response.status).toBe(500);
		expect(((await response.json()) as OpenAIError).error.message).toMatch(
			/wrangler secret put UNSET_SECRET/,
		);
	});

	it("502 when the provider cannot be reached, 504 when it does not answer in time; the slot is released", async () => {
		const reset = await call("/openai/v1/chat/completions", {
			body: chat,
			headers: { "x-mock-fault": "reset" },
		});
		expect(reset.status).toBe(502);
		const hang = await call("/impatient/v1/chat/completions", {
			body: chat,
			headers: { "x-mock-fault": "hang" },
		});
		expect(hang.status).toBe(504);
		expect(((await hang.json()) as OpenAIError).error.message).toMatch(
			/did not answer within 300 ms/,
		);
		await eventuallyIdle("openai");
		await eventuallyIdle("impatient");
	});

	it("a provider that refuses the pool's key becomes a 502 that does not echo the provider's message", async () => {
		upstream.mock.configure({ apiKey: "some-other-key" });
		const response = await call("/openai/v1/chat/completions", { body: chat });
		expect(response.status).toBe(502);
		const text = await response.text();
		expect(text).toMatch(/TEST_PROVIDER_KEY/);
		expect(text).not.toContain(TEST_PROVIDER_KEY);
	});
});
