// Cost estimates for each endpoint, and the body tollbooth forwards (usage injection).

import { describe, expect, it } from "vitest";
import { providerFor } from "../../src/providers/index.ts";
import type { Estimate } from "../../src/providers/types.ts";
import anthropicStreamExchange from "../fixtures/providers/anthropic/message_stream_recorded.headers.json";

const openai = providerFor("openai");
const anthropic = providerFor("anthropic");
const DEFAULT_MAX_OUTPUT = 4096;

function estimated(estimate: Estimate) {
	if (estimate.kind !== "estimate")
		throw new Error(`expected an estimate, got: ${estimate.message}`);
	return estimate;
}

const hello = [{ role: "user", content: "Hello" }];

describe("openai estimate", () => {
	it("chat: prompt bytes / 4 plus a per-message overhead, documented heuristic", () => {
		// JSON of the messages is 34 bytes -> 9 tokens, plus 4 for the one message.
		const estimate = estimated(
			openai.estimate("/chat/completions", { model: "gpt-4o-mini", messages: hello }, 100),
		);
		expect(estimate).toEqual({
			kind: "estimate",
			model: "gpt-4o-mini",
			stream: false,
			promptTokens: 13,
			maxOutputTokens: 100,
			tokens: 113,
		});
	});

	it.each([
		[
			"max_completion_tokens wins over max_tokens",
			{ max_completion_tokens: 300, max_tokens: 50 },
			300,
		],
		["max_tokens alone", { max_tokens: 50 }, 50],
		["neither: the default", {}, DEFAULT_MAX_OUTPUT],
		["a null limit is the default", { max_tokens: null }, DEFAULT_MAX_OUTPUT],
		["n choices multiply the allowance", { max_tokens: 50, n: 3 }, 150],
	])("chat output allowance: %s", (_name, limits, maxOutputTokens) => {
		const body = { model: "gpt-4o-mini", messages: hello, ...limits };
		const estimate = estimated(openai.estimate("/chat/completions", body, DEFAULT_MAX_OUTPUT));
		expect(estimate.maxOutputTokens).toBe(maxOutputTokens);
		expect(estimate.tokens).toBe(estimate.promptTokens + maxOutputTokens);
	});

	it.each([
		[
			"/chat/completions",
			{ max_tokens: -5 },
			/"max_tokens" must be a non-negative integer; got -5/,
		],
		["/chat/completions", { max_tokens: "50" }, /"max_tokens" .* got "50"/],
		["/chat/completions", { max_completion_tokens: 1.5 }, /"max_completion_tokens"/],
		["/chat/completions", { max_tokens: 10, max_completion_tokens: -1 }, /max_completion_tokens/],
		["/chat/completions", { n: 0 }, /"n" must be a positive integer/],
		["/completions", { max_tokens: 1e300 }, /"max_tokens"/],
		["/completions", { best_of: "3" }, /"best_of"/],
		["/responses", { max_output_tokens: -1 }, /"max_output_tokens"/],
	])("%s refuses a cost-deciding field that is not a valid count: %o", (path, fields, message) => {
		const body = { model: "gpt-4o-mini", messages: hello, prompt: "Hi", input: "Hi", ...fields };
		const estimate = openai.estimate(path, body, DEFAULT_MAX_OUTPUT);
		expect(estimate.kind).toBe("invalid");
		expect(estimate.kind === "invalid" && estimate.message).toMatch(message);
	});

	it("detects stream: true", () => {
		const body = { model: "gpt-4o-mini", messages: hello, stream: true };
		expect(estimated(openai.estimate("/chat/completions", body, 10)).stream).toBe(true);
	});

	it("tools count towards the prompt", () => {
		const plain = { model: "gpt-4o-mini", messages: hello };
		const tools = [
			{
				type: "function",
				function: {
					name: "get_weather",
					parameters: { type: "object", properties: { city: { type: "string" } } },
				},
			},
		];
		const withTools = estimated(openai.estimate("/chat/completions", { ...plain, tools }, 10));
		expect(withTools.promptTokens).toBeGreaterThan(
			estimated(openai.estimate("/chat/completions", plain, 10)).promptTokens + 20,
		);
	});

	it("a base64 image counts a flat allowance, not its size", () => {
		const image = `data:image/png;base64,${"A".repeat(1_000_000)}`;
		const messages = [
			{ role: "user", content: [{ type: "image_url", image_url: { url: image } }] },
		];
		const estimate = estimated(
			openai.estimate("/chat/completions", { model: "gpt-4o", messages }, 0),
		);
		expect(estimate.promptTokens).toBeGreaterThanOrEqual(1_600);
		expect(estimate.promptTokens).toBeLessThan(2_000);
	});

	it("non-ASCII text counts its UTF-8 bytes", () => {
		const ascii = estimated(
			openai.estimate(
				"/chat/completions",
				{ model: "m", messages: [{ role: "user", content: "aaaaaaaaaaaa" }] },
				0,
			),
		);
		const cjk = estimated(
			openai.estimate(
				"/chat/completions",
				{ model: "m", messages: [{ role: "user", content: "旧金山旧金山旧金山旧金山" }] },
				0,
			),
		);
		expect(cjk.promptTokens - ascii.promptTokens).toBe(6); // 36 bytes vs 12 bytes
	});

	it("completions: prompt, max_tokens, n and best_of", () => {
		const body = {
			model: "gpt-3.5-turbo-instruct",
			prompt: "Say this is a test",
			max_tokens: 7,
			n: 2,
			best_of: 3,
		};
		const estimate = estimated(openai.estimate("/completions", body, DEFAULT_MAX_OUTPUT));
		expect(estimate.promptTokens).toBe(Math.ceil('"Say this is a test"'.length / 4));
		expect(estimate.maxOutputTokens).toBe(21);
	});

	it("responses: input, instructions and max_output_tokens", () => {
		const body = {
			model: "gpt-4o-mini",
			instructions: "You are terse.",
			input: "Tell me a story",
			max_output_tokens: 500,
		};
		const estimate = estimated(openai.estimate("/responses", body, DEFAULT_MAX_OUTPUT));
		expect(estimate.maxOutputTokens).toBe(500);
		expect(estimate.promptTokens).toBe(
			Math.ceil(('"Tell me a story"'.length + '"You are terse."'.length) / 4) + 4,
		);
		expect(
			estimated(openai.estimate("/responses", { model: "gpt-4o-mini", input: "x" }, 77))
				.maxOutputTokens,
		).toBe(77);
	});

	it("responses: each input item is a message", () => {
		const oneItem = estimated(
			openai.estimate("/responses", { model: "m", input: [{ role: "user", content: "hi" }] }, 0),
		);
		const twoItems = estimated(
			openai.estimate(
				"/responses",
				{
					model: "m",
					input: [
						{ role: "user", content: "hi" },
						{ role: "user", content: "hi" },
					],
				},
				0,
			),
		);
		expect(twoItems.promptTokens - oneItem.promptTokens).toBeGreaterThanOrEqual(4 + 8);
	});

	it("embeddings count input only, whatever the default output allowance", () => {
		const body = {
			model: "text-embedding-3-small",
			input: ["The food was delicious", "and the waiter..."],
		};
		const estimate = estimated(openai.estimate("/embeddings", body, DEFAULT_MAX_OUTPUT));
		expect(estimate.maxOutputTokens).toBe(0);
		expect(estimate.tokens).toBe(estimate.promptTokens);
		expect(estimate.promptTokens).toBeGreaterThan(0);
	});

	it.each([
		["/chat/completions", { messages: hello }, "gpt-4o-mini"],
		["/chat/completions", { model: 42, messages: hello }, "gpt-4o-mini"],
		["/responses", { model: "", input: "x" }, "gpt-4o-mini"],
		["/embeddings", { input: "x" }, "text-embedding-3-small"],
		["/completions", { prompt: "x" }, "gpt-3.5-turbo-instruct"],
	])(
		"%s without a string model is invalid, with a message naming the fix (%j)",
		(path, body, example) => {
			const estimate = openai.estimate(path, body, 10);
			expect(estimate.kind).toBe("invalid");
			expect(estimate.kind === "invalid" && estimate.message).toContain(`"model": "${example}"`);
		},
	);

	it.each([
		["an array", [{ model: "gpt-4o-mini" }]],
		["null", null],
		["a string", "model=gpt-4o-mini"],
	])("a body that is %s is invalid", (_name, body) => {
		expect(openai.estimate("/chat/completions", body, 10)).toEqual({
			kind: "invalid",
			message: expect.stringContaining("JSON object"),
		});
	});

	it("a query string or trailing slash does not hide the endpoint", () => {
		expect(
			openai.estimate("/chat/completions?api-version=2024-10-21", { messages: hello }, 10).kind,
		).toBe("invalid");
		expect(openai.estimate("/embeddings/", { input: "x" }, 10).kind).toBe("invalid");
	});

	it("other endpoints cost one request and no tokens, never invalid", () => {
		expect(openai.estimate("/models", undefined, DEFAULT_MAX_OUTPUT)).toEqual({
			kind: "estimate",
			model: "",
			stream: false,
			promptTokens: 0,
			maxOutputTokens: 0,
			tokens: 0,
		});
		const moderation = estimated(
			openai.estimate(
				"/moderations",
				{ model: "omni-moderation-latest", input: "hello there" },
				DEFAULT_MAX_OUTPUT,
			),
		);
		expect(moderation).toMatchObject({ model: "omni-moderation-latest", tokens: 0 });
	});

	it("openai-compatible estimates the same way", () => {
		const body = { model: "llama-3.1-8b", messages: hello, max_tokens: 9 };
		expect(providerFor("openai-compatible").estimate("/chat/completions", body, 1)).toEqual(
			openai.estimate("/chat/completions", body, 1),
		);
	});
});

describe("anthropic estimate", () => {
	it.each([-1, "1024", 2.5, true])("refuses max_tokens %o before anything is reserved", (value) => {
		const body = { model: "claude-sonnet-4-5", messages: hello, max_tokens: value };
		const estimate = anthropic.estimate("/messages", body, DEFAULT_MAX_OUTPUT);
		expect(estimate.kind === "invalid" && estimate.message).toMatch(
			/"max_tokens" must be a non-negative integer/,
		);
	});

	it("the recorded streaming request: messages, output schema, max_tokens, stream", () => {
		const body = anthropicStreamExchange.request_body;
		const estimate = estimated(anthropic.estimate("/messages", body, DEFAULT_MAX_OUTPUT));
		expect(estimate).toMatchObject({
			model: "claude-sonnet-4-5",
			stream: true,
			maxOutputTokens: 1024,
		});
		const promptBytes =
			JSON.stringify(body.messages).length + JSON.stringify(body.output_config).length;
		expect(estimate.promptTokens).toBe(Math.ceil(promptBytes / 4) + 4);
	});

	it("system and tools count towards the prompt; no max_tokens means the default", () => {
		const body = { model: "claude-sonnet-4-5", messages: hello };
		const bare = estimated(anthropic.estimate("/messages", body, DEFAULT_MAX_OUTPUT));
		const withSystem = estimated(
			anthropic.estimate("/messages", { ...body, system: "You are a pirate. ".repeat(10) }, 1),
		);
		expect(bare.maxOutputTokens).toBe(DEFAULT_MAX_OUTPUT);
		expect(withSystem.promptTokens - bare.promptTokens).toBe(
			Math.ceil(JSON.stringify("You are a pirate. ".repeat(10)).length / 4),
		);
	});

	it("a base64 image block counts a flat allowance", () => {
		const content = [
			{
				type: "image",
				source: { type: "base64", media_type: "image/png", data: "A".repeat(500_000) },
			},
		];
		const estimate = estimated(
			anthropic.estimate(
				"/messages",
				{ model: "claude-sonnet-4-5", messages: [{ role: "user", content }], max_tokens: 10 },
				0,
			),
		);
		expect(estimate.promptTokens).toBeGreaterThanOrEqual(1_600);
		expect(estimate.promptTokens).toBeLessThan(2_000);
	});

	it("count_tokens costs a request and no tokens", () => {
		const body = { model: "claude-sonnet-4-5", messages: hello };
		expect(
			estimated(anthropic.estimate("/messages/count_tokens", body, DEFAULT_MAX_OUTPUT)).tokens,
		).toBe(0);
	});

	it("a missing model is invalid with an example Claude model", () => {
		const estimate = anthropic.estimate("/messages", { messages: hello, max_tokens: 10 }, 10);
		expect(estimate).toEqual({
			kind: "invalid",
			message: expect.stringContaining('"model": "claude-sonnet-4-5"'),
		});
	});
});

describe("prepareBody", () => {
	const chat = { model: "gpt-4o-mini", messages: hello, stream: true };

	it("asks for a usage chunk on a streamed chat completion that did not", () => {
		const prepared = openai.prepareBody("/chat/completions", chat);
		expect(prepared).toEqual({
			body: { ...chat, stream_options: { include_usage: true } },
			injectedUsage: true,
		});
		expect(chat).not.toHaveProperty("stream_options"); // the client's body is not mutated
	});

	it("keeps the client's other stream options", () => {
		const body = { ...chat, stream_options: { include_obfuscation: false, include_usage: false } };
		expect(openai.prepareBody("/chat/completions", body)).toEqual({
			body: { ...chat, stream_options: { include_obfuscation: false, include_usage: true } },
			injectedUsage: true,
		});
	});

	it("also for legacy completions", () => {
		const body = { model: "gpt-3.5-turbo-instruct", prompt: "x", stream: true };
		expect(openai.prepareBody("/completions", body).injectedUsage).toBe(true);
	});

	it.each([
		[
			"the client already asked for usage",
			"/chat/completions",
			{ ...chat, stream_options: { include_usage: true } },
		],
		["not streamed", "/chat/completions", { ...chat, stream: false }],
		[
			"responses always report usage",
			"/responses",
			{ model: "gpt-4o-mini", input: "x", stream: true },
		],
		["embeddings", "/embeddings", { model: "text-embedding-3-small", input: "x" }],
	])("leaves the body alone when %s", (_name, path, body) => {
		const prepared = openai.prepareBody(path, body);
		expect(prepared.body).toBe(body);
		expect(prepared.injectedUsage).toBe(false);
	});

	it("anthropic streams always report usage: body unchanged", () => {
		const body = anthropicStreamExchange.request_body;
		expect(anthropic.prepareBody("/messages", body)).toEqual({ body, injectedUsage: false });
	});
});

describe("authHeaders", () => {
	it("openai sends a bearer token, anthropic x-api-key", () => {
		expect(openai.authHeaders("sk-1")).toEqual({ authorization: "Bearer sk-1" });
		expect(providerFor("openai-compatible").authHeaders("k")).toEqual({
			authorization: "Bearer k",
		});
		expect(anthropic.authHeaders("sk-ant-1")).toEqual({ "x-api-key": "sk-ant-1" });
	});
});
