// The mock's OpenAI routes answer in OpenAI's shapes: JSON bodies, SSE chunks, usage, errors.
import { describe, expect, it } from "vitest";
import { createMockProvider } from "../../src/mock/provider.ts";
import { chat, get, post, readData, readEvents } from "./helpers.ts";

const usageOf = (promptTokens: number, completionTokens: number) => ({
	prompt_tokens: promptTokens,
	completion_tokens: completionTokens,
	total_tokens: promptTokens + completionTokens,
});

describe("POST /openai/v1/chat/completions", () => {
	it("answers a chat completion whose text length matches its completion tokens", async () => {
		const provider = createMockProvider({ completionTokens: 7 });
		const response = await post(provider, "/openai/v1/chat/completions", chat(5));
		expect(response.status).toBe(200);
		expect(response.headers.get("content-type")).toBe("application/json");
		const body = await response.json<{ choices: { message: { content: string } }[] }>();
		expect(body).toMatchObject({
			object: "chat.completion",
			model: "gpt-4o-mini",
			choices: [{ index: 0, message: { role: "assistant" }, finish_reason: "stop" }],
			usage: { ...usageOf(5, 7), prompt_tokens_details: { cached_tokens: 0 } },
		});
		const content = body.choices[0]?.message.content ?? "";
		expect(Math.ceil(content.length / 4)).toBe(7);
	});

	it("caps the answer at the request's max tokens and says so with finish_reason length", async () => {
		const provider = createMockProvider({ completionTokens: 20 });
		const response = await post(
			provider,
			"/openai/v1/chat/completions",
			chat(2, { max_completion_tokens: 3 }),
		);
		expect(await response.json()).toMatchObject({
			choices: [{ finish_reason: "length" }],
			usage: usageOf(2, 3),
		});
	});

	it("streams chunks, then with include_usage a usage chunk with no choices, then [DONE]", async () => {
		const provider = createMockProvider({ completionTokens: 3 });
		const response = await post(
			provider,
			"/openai/v1/chat/completions",
			chat(4, { stream: true, stream_options: { include_usage: true } }),
		);
		expect(response.headers.get("content-type")).toContain("text/event-stream");
		const events = await readEvents(response);
		expect(events.at(-1)?.data).toBe("[DONE]");
		const chunks = events.slice(0, -1).map((event) => JSON.parse(event.data));
		const usageChunk = chunks.at(-1);
		expect(usageChunk).toMatchObject({ object: "chat.completion.chunk", choices: [] });
		expect(usageChunk.usage).toMatchObject(usageOf(4, 3));
		const contentChunks = chunks.slice(0, -1);
		for (const chunk of contentChunks) expect(chunk).toHaveProperty("usage", null);
		expect(contentChunks[0].choices[0].delta).toMatchObject({ role: "assistant", content: "" });
		expect(contentChunks.at(-1).choices[0]).toMatchObject({ delta: {}, finish_reason: "stop" });
		const text = contentChunks.map((chunk) => chunk.choices[0].delta.content ?? "").join("");
		expect(Math.ceil(text.length / 4)).toBe(3);
	});

	it("streams without any usage key when include_usage is not asked for", async () => {
		const provider = createMockProvider({ completionTokens: 2 });
		const response = await post(provider, "/openai/v1/chat/completions", chat(1, { stream: true }));
		const chunks = await readData(response);
		expect(chunks).toHaveLength(4); // role, two tokens, finish
		for (const chunk of chunks) expect(chunk).not.toHaveProperty("usage");
	});
});

describe("other OpenAI routes", () => {
	it("answers a legacy completion with usage", async () => {
		const provider = createMockProvider({ completionTokens: 4 });
		const response = await post(provider, "/openai/v1/completions", {
			model: "gpt-3.5-turbo-instruct",
			prompt: "x".repeat(12),
		});
		const body = await response.json<{ choices: { text: string }[] }>();
		expect(body).toMatchObject({ object: "text_completion", usage: usageOf(3, 4) });
		expect(body.choices[0]?.text.length).toBeGreaterThan(12);
	});

	it("answers embeddings, one per input, usage without completion tokens", async () => {
		const provider = createMockProvider();
		const response = await post(provider, "/openai/v1/embeddings", {
			model: "text-embedding-3-small",
			input: ["abcd", "efgh"],
			dimensions: 3,
		});
		const body = await response.json<{ data: { embedding: number[] }[] }>();
		expect(body).toMatchObject({
			object: "list",
			data: [
				{ object: "embedding", index: 0 },
				{ object: "embedding", index: 1 },
			],
			usage: { prompt_tokens: 2, total_tokens: 2 },
		});
		expect(body.data[0]?.embedding).toHaveLength(3);
	});

	it("encodes embeddings as float32 base64 when asked, as the OpenAI SDK does by default", async () => {
		const provider = createMockProvider();
		const asFloats = await post(provider, "/openai/v1/embeddings", { model: "e", input: "hi" });
		const asBase64 = await post(provider, "/openai/v1/embeddings", {
			model: "e",
			input: "hi",
			encoding_format: "base64",
		});
		const floats = (await asFloats.json<{ data: { embedding: number[] }[] }>()).data[0]?.embedding;
		const base64 = (await asBase64.json<{ data: { embedding: string }[] }>()).data[0]?.embedding;
		const bytes = Uint8Array.from(atob(base64 ?? ""), (char) => char.charCodeAt(0));
		expect([...new Float32Array(bytes.buffer)]).toEqual(floats?.map(Math.fround));
	});

	it("answers a response with usage in input/output tokens", async () => {
		const provider = createMockProvider({ completionTokens: 5 });
		const response = await post(provider, "/openai/v1/responses", {
			model: "gpt-5.4",
			instructions: "abcd",
			input: [{ role: "user", content: [{ type: "input_text", text: "efgh" }] }],
		});
		expect(await response.json()).toMatchObject({
			object: "response",
			status: "completed",
			output: [{ type: "message", role: "assistant", content: [{ type: "output_text" }] }],
			usage: { input_tokens: 2, output_tokens: 5, total_tokens: 7 },
		});
	});

	it("streams a response with event: lines, usage in response.completed", async () => {
		const provider = createMockProvider({ completionTokens: 2 });
		const response = await post(provider, "/openai/v1/responses", {
			model: "gpt-5.4",
			input: "abcd",
			stream: true,
		});
		const events = await readEvents(response);
		expect(events.map((event) => event.event)).toEqual([
			"response.created",
			"response.in_progress",
			"response.output_item.added",
			"response.content_part.added",
			"response.output_text.delta",
			"response.output_text.delta",
			"response.output_text.done",
			"response.content_part.done",
			"response.output_item.done",
			"response.completed",
		]);
		for (const event of events) expect(JSON.parse(event.data).type).toBe(event.event);
		const completed = JSON.parse(events.at(-1)?.data ?? "{}");
		expect(completed.response.usage).toMatchObject({
			input_tokens: 1,
			output_tokens: 2,
			total_tokens: 3,
		});
	});

	it("lists models", async () => {
		const response = await get(createMockProvider(), "/openai/v1/models");
		const body = await response.json<{ object: string; data: { object: string }[] }>();
		expect(body.object).toBe("list");
		expect(body.data.length).toBeGreaterThan(0);
		for (const model of body.data) expect(model.object).toBe("model");
	});
});

describe("OpenAI errors", () => {
	it("answers 401 invalid_api_key for a wrong Bearer key and accepts the right one", async () => {
		const provider = createMockProvider({ apiKey: "sk-right" });
		const wrong = await post(provider, "/openai/v1/chat/completions", chat(), {
			authorization: "Bearer sk-wrong",
		});
		expect(wrong.status).toBe(401);
		expect(await wrong.json()).toMatchObject({
			error: { type: "invalid_request_error", code: "invalid_api_key", param: null },
		});
		const missing = await get(provider, "/openai/v1/models");
		expect(missing.status).toBe(401);
		const right = await post(provider, "/openai/v1/chat/completions", chat(), {
			authorization: "Bearer sk-right",
		});
		expect(right.status).toBe(200);
	});

	it("answers 400 for a body that is not JSON and for a missing model", async () => {
		const provider = createMockProvider();
		const notJson = await post(provider, "/openai/v1/chat/completions", "{not json");
		expect(notJson.status).toBe(400);
		expect(await notJson.json()).toMatchObject({ error: { type: "invalid_request_error" } });
		const noModel = await post(provider, "/openai/v1/chat/completions", { messages: [] });
		expect(noModel.status).toBe(400);
		expect(await noModel.json()).toMatchObject({
			error: { type: "invalid_request_error", param: "model", message: expect.any(String) },
		});
	});

	it("answers 404 in OpenAI's shape for an unknown path", async () => {
		const response = await post(createMockProvider(), "/openai/v1/nothing/here", {});
		expect(response.status).toBe(404);
		expect(await response.json()).toMatchObject({
			error: {
				message: "Invalid URL (POST /openai/v1/nothing/here)",
				type: "invalid_request_error",
			},
		});
	});
});
