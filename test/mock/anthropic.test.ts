// The mock's Anthropic routes answer in Anthropic's shapes: messages, the SSE event sequence,
// usage, errors.
import { describe, expect, it } from "vitest";
import { createMockProvider } from "../../src/mock/provider.ts";
import { anthropicMessage, get, post, readEvents } from "./helpers.ts";

describe("POST /anthropic/v1/messages", () => {
	it("answers a message with input and output token usage", async () => {
		const provider = createMockProvider({ completionTokens: 6 });
		const response = await post(
			provider,
			"/anthropic/v1/messages",
			anthropicMessage(3, { system: [{ type: "text", text: "abcdefgh" }] }),
		);
		expect(response.status).toBe(200);
		const body = await response.json<{ content: { text: string }[] }>();
		expect(body).toMatchObject({
			type: "message",
			role: "assistant",
			model: "claude-sonnet-4-5",
			content: [{ type: "text" }],
			stop_reason: "end_turn",
			stop_sequence: null,
			usage: { input_tokens: 5, output_tokens: 6, cache_read_input_tokens: 0 },
		});
		expect(Math.ceil((body.content[0]?.text.length ?? 0) / 4)).toBe(6);
	});

	it("stops at max_tokens with stop_reason max_tokens", async () => {
		const provider = createMockProvider({ completionTokens: 50 });
		const response = await post(
			provider,
			"/anthropic/v1/messages",
			anthropicMessage(1, { max_tokens: 4 }),
		);
		expect(await response.json()).toMatchObject({
			stop_reason: "max_tokens",
			usage: { output_tokens: 4 },
		});
	});

	it("streams the event sequence of the real API, input tokens first and output tokens last", async () => {
		const provider = createMockProvider({ completionTokens: 3 });
		const response = await post(
			provider,
			"/anthropic/v1/messages",
			anthropicMessage(2, { stream: true }),
		);
		expect(response.headers.get("content-type")).toContain("text/event-stream");
		const events = await readEvents(response);
		expect(events.map((event) => event.event)).toEqual([
			"message_start",
			"content_block_start",
			"ping",
			"content_block_delta",
			"content_block_delta",
			"content_block_delta",
			"content_block_stop",
			"message_delta",
			"message_stop",
		]);
		const data = events.map((event) => JSON.parse(event.data));
		for (const [index, event] of events.entries()) expect(data[index].type).toBe(event.event);
		expect(data[0].message.usage.input_tokens).toBe(2);
		const text = data
			.filter((event) => event.type === "content_block_delta")
			.map((event) => event.delta.text)
			.join("");
		expect(Math.ceil(text.length / 4)).toBe(3);
		expect(data[7]).toMatchObject({
			delta: { stop_reason: "end_turn" },
			usage: { output_tokens: 3 },
		});
	});

	it("lists models", async () => {
		const response = await get(createMockProvider(), "/anthropic/v1/models");
		const body = await response.json<{ data: { type: string }[]; has_more: boolean }>();
		expect(body.has_more).toBe(false);
		expect(body.data.length).toBeGreaterThan(0);
		for (const model of body.data) expect(model.type).toBe("model");
	});
});

describe("Anthropic errors", () => {
	it("answers 401 authentication_error unless the key is exactly the key", async () => {
		const provider = createMockProvider({ apiKey: "sk-ant-right" });
		const refusedHeaders: Record<string, string>[] = [
			{},
			{ "x-api-key": "sk-ant-wrong" },
			{ authorization: "Bearer sk-ant-wrong" },
		];
		for (const headers of refusedHeaders) {
			const response = await post(provider, "/anthropic/v1/messages", anthropicMessage(), headers);
			expect(response.status).toBe(401);
			expect(await response.json()).toMatchObject({
				type: "error",
				error: { type: "authentication_error", message: expect.any(String) },
			});
		}
		// x-api-key as documented, or Bearer as @anthropic-ai/sdk 1.x sends its apiKey.
		const acceptedHeaders: Record<string, string>[] = [
			{ "x-api-key": "sk-ant-right" },
			{ authorization: "Bearer sk-ant-right" },
		];
		for (const headers of acceptedHeaders) {
			const right = await post(provider, "/anthropic/v1/messages", anthropicMessage(), headers);
			expect(right.status).toBe(200);
		}
	});

	it("answers 400 invalid_request_error for a body that is not JSON and for a missing model", async () => {
		const provider = createMockProvider();
		const notJson = await post(provider, "/anthropic/v1/messages", "]");
		expect(notJson.status).toBe(400);
		expect(await notJson.json()).toMatchObject({
			type: "error",
			error: { type: "invalid_request_error" },
		});
		const noModel = await post(provider, "/anthropic/v1/messages", { messages: [] });
		expect(noModel.status).toBe(400);
		expect(await noModel.json()).toMatchObject({
			error: { type: "invalid_request_error", message: "model: Field required" },
		});
	});

	it("answers 404 not_found_error for an unknown path", async () => {
		const response = await post(createMockProvider(), "/anthropic/v1/complete-me", {});
		expect(response.status).toBe(404);
		expect(await response.json()).toEqual({
			type: "error",
			error: { type: "not_found_error", message: "Not Found" },
		});
	});
});
