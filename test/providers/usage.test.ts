// Usage read from every recorded/documented response body and SSE stream of both providers.

import { describe, expect, it } from "vitest";
import { providerFor } from "../../src/providers/index.ts";
import type { Usage } from "../../src/providers/types.ts";
import anthropicMessage from "../fixtures/providers/anthropic/message.json";
import anthropicBasicSse from "../fixtures/providers/anthropic/message_stream_basic_sdk.sse?raw";
import anthropicEndsWithErrorSse from "../fixtures/providers/anthropic/message_stream_ends_with_error_ASSEMBLED.sse?raw";
import anthropicErrorEventSse from "../fixtures/providers/anthropic/message_stream_error_event_sdk.sse?raw";
import anthropicRecordedSse from "../fixtures/providers/anthropic/message_stream_recorded.sse?raw";
import anthropicToolUseSse from "../fixtures/providers/anthropic/message_stream_tool_use_sdk.sse?raw";
import anthropicMergeCases from "../fixtures/providers/anthropic/message_stream_usage_merge_cases.json";
import anthropicToolUseExchange from "../fixtures/providers/anthropic/message_tool_use_with_ratelimit_headers.json";
import chatCompletion from "../fixtures/providers/openai/chat_completion.json";
import chatRecorded2024 from "../fixtures/providers/openai/chat_completion_recorded_2024.json";
import chatParallelToolCallsSse from "../fixtures/providers/openai/chat_completion_stream_parallel_tool_calls.sse?raw";
import chatToolCallsSse from "../fixtures/providers/openai/chat_completion_stream_tool_calls.sse?raw";
import chatUsageSse from "../fixtures/providers/openai/chat_completion_stream_usage.sse?raw";
import chatToolCalls from "../fixtures/providers/openai/chat_completion_tool_calls.json";
import embeddingsApiRef from "../fixtures/providers/openai/embeddings_apiref.json";
import embeddingsSdkTest from "../fixtures/providers/openai/embeddings_sdk_test.json";
import response from "../fixtures/providers/openai/response.json";
import responseReasoning from "../fixtures/providers/openai/response_reasoning.json";
import responseRecorded2025 from "../fixtures/providers/openai/response_recorded_2025.json";
import responseApiRefSse from "../fixtures/providers/openai/response_stream_apiref.sse?raw";
import responseApiRefNormalizedSse from "../fixtures/providers/openai/response_stream_apiref_normalized.sse?raw";
import responseSdkSnapshotSse from "../fixtures/providers/openai/response_stream_sdk_snapshot.sse?raw";
import { bytesOf, runMeter, splitsOf, sseOf } from "./stream-helpers.ts";

const openai = providerFor("openai");
const anthropic = providerFor("anthropic");

describe("usage from a JSON body", () => {
	const cases: {
		name: string;
		provider: typeof openai;
		path: string;
		body: unknown;
		usage: Usage;
	}[] = [
		{
			name: "chat completion (api-ref)",
			provider: openai,
			path: "/chat/completions",
			body: chatCompletion,
			usage: { inputTokens: 19, outputTokens: 10, cachedInputTokens: 0, reasoningTokens: 0 },
		},
		{
			name: "chat tool calls, no prompt details",
			provider: openai,
			path: "/chat/completions",
			body: chatToolCalls,
			usage: { inputTokens: 82, outputTokens: 17, reasoningTokens: 0 },
		},
		{
			name: "chat recorded 2024",
			provider: openai,
			path: "/chat/completions",
			body: chatRecorded2024,
			usage: { inputTokens: 79, outputTokens: 14, reasoningTokens: 0 },
		},
		{
			name: "embeddings (no completion tokens)",
			provider: openai,
			path: "/embeddings",
			body: embeddingsApiRef,
			usage: { inputTokens: 8, outputTokens: 0 },
		},
		{
			name: "embeddings float form",
			provider: openai,
			path: "/embeddings",
			body: embeddingsSdkTest.float,
			usage: { inputTokens: 1, outputTokens: 0 },
		},
		{
			name: "embeddings base64 form",
			provider: openai,
			path: "/embeddings",
			body: embeddingsSdkTest.base64,
			usage: { inputTokens: 1, outputTokens: 0 },
		},
		{
			name: "responses (api-ref)",
			provider: openai,
			path: "/responses",
			body: response,
			usage: { inputTokens: 36, outputTokens: 87, cachedInputTokens: 0, reasoningTokens: 0 },
		},
		{
			name: "responses with reasoning tokens",
			provider: openai,
			path: "/responses",
			body: responseReasoning,
			usage: { inputTokens: 81, outputTokens: 1035, cachedInputTokens: 0, reasoningTokens: 832 },
		},
		{
			name: "responses recorded 2025",
			provider: openai,
			path: "/responses",
			body: responseRecorded2025,
			usage: { inputTokens: 14, outputTokens: 50, cachedInputTokens: 0, reasoningTokens: 0 },
		},
		{
			name: "anthropic message",
			provider: anthropic,
			path: "/messages",
			body: anthropicMessage,
			usage: { inputTokens: 406, outputTokens: 50, cachedInputTokens: 0, cacheWriteInputTokens: 0 },
		},
		{
			name: "anthropic tool use with server tools",
			provider: anthropic,
			path: "/messages",
			body: anthropicToolUseExchange.body,
			usage: {
				inputTokens: 3182,
				outputTokens: 237,
				cachedInputTokens: 0,
				cacheWriteInputTokens: 0,
			},
		},
	];
	it.each(cases)("$name", ({ provider, path, body, usage }) => {
		expect(provider.usageFromJson(path, body)).toEqual(usage);
	});

	it("anthropic input includes cache creation and cache reads", () => {
		const body = {
			usage: {
				input_tokens: 10,
				cache_creation_input_tokens: 200,
				cache_read_input_tokens: 3000,
				output_tokens: 7,
			},
		};
		expect(anthropic.usageFromJson("/messages", body)).toEqual({
			inputTokens: 3210,
			outputTokens: 7,
			cachedInputTokens: 3000,
			cacheWriteInputTokens: 200,
		});
	});

	it("openai: cached prompt tokens and reasoning tokens, as the chat API reports them", () => {
		const body = {
			usage: {
				prompt_tokens: 2006,
				completion_tokens: 300,
				prompt_tokens_details: { cached_tokens: 1920 },
				completion_tokens_details: { reasoning_tokens: 192 },
			},
		};
		expect(openai.usageFromJson("/chat/completions", body)).toEqual({
			inputTokens: 2006,
			outputTokens: 300,
			cachedInputTokens: 1920,
			reasoningTokens: 192,
		});
	});

	it("anthropic tolerates null cache fields", () => {
		const body = {
			usage: {
				input_tokens: 10,
				cache_creation_input_tokens: null,
				cache_read_input_tokens: null,
				output_tokens: 7,
			},
		};
		expect(anthropic.usageFromJson("/messages", body)).toEqual({
			inputTokens: 10,
			outputTokens: 7,
		});
	});

	it.each([
		["no usage key", { id: "x" }],
		["usage null", { usage: null }],
		["negative tokens", { usage: { prompt_tokens: -1, completion_tokens: 2 } }],
		["not an object", "oops"],
		["an error body", { error: { message: "nope", type: "server_error" } }],
	])("openai: %s gives no usage", (_name, body) => {
		expect(openai.usageFromJson("/chat/completions", body)).toBeUndefined();
	});

	it("anthropic: count_tokens' answer is not usage", () => {
		expect(anthropic.usageFromJson("/messages/count_tokens", { input_tokens: 12 })).toBeUndefined();
	});
});

describe("usage from an SSE stream", () => {
	const cases: { name: string; provider: typeof openai; sse: string; usage: Usage | undefined }[] =
		[
			{
				name: "openai chat with usage chunk",
				provider: openai,
				sse: chatUsageSse,
				usage: { inputTokens: 79, outputTokens: 14, reasoningTokens: 0 },
			},
			{
				name: "openai chat tool calls",
				provider: openai,
				sse: chatToolCallsSse,
				usage: { inputTokens: 76, outputTokens: 24, reasoningTokens: 0 },
			},
			{
				name: "openai chat parallel tool calls",
				provider: openai,
				sse: chatParallelToolCallsSse,
				usage: { inputTokens: 149, outputTokens: 60, reasoningTokens: 0 },
			},
			{
				name: "responses with event: lines, unterminated last event and doc elision",
				provider: openai,
				sse: responseApiRefSse,
				usage: { inputTokens: 37, outputTokens: 11, reasoningTokens: 0 },
			},
			{
				name: "responses with event: lines, normalized",
				provider: openai,
				sse: responseApiRefNormalizedSse,
				usage: { inputTokens: 37, outputTokens: 11, reasoningTokens: 0 },
			},
			{
				name: "responses data-only (sdk snapshot), zero usage on response.created ignored",
				provider: openai,
				sse: responseSdkSnapshotSse,
				usage: { inputTokens: 10, outputTokens: 2, cachedInputTokens: 0, reasoningTokens: 0 },
			},
			{
				name: "anthropic recorded, padded data lines",
				provider: anthropic,
				sse: anthropicRecordedSse,
				usage: {
					inputTokens: 135,
					outputTokens: 10,
					cachedInputTokens: 0,
					cacheWriteInputTokens: 0,
				},
			},
			{
				name: "anthropic basic (no final newline)",
				provider: anthropic,
				sse: anthropicBasicSse,
				usage: { inputTokens: 11, outputTokens: 6 },
			},
			{
				name: "anthropic tool use",
				provider: anthropic,
				sse: anthropicToolUseSse,
				usage: {
					inputTokens: 377,
					outputTokens: 65,
					cachedInputTokens: 0,
					cacheWriteInputTokens: 0,
				},
			},
			{
				name: "anthropic stream ending in an error event: usage so far",
				provider: anthropic,
				sse: anthropicEndsWithErrorSse,
				usage: { inputTokens: 11, outputTokens: 1 },
			},
			{
				name: "anthropic error event alone",
				provider: anthropic,
				sse: anthropicErrorEventSse,
				usage: undefined,
			},
		];

	for (const { name, provider, sse, usage } of cases) {
		it.each(splitsOf(sse))(`${name} ($name)`, async ({ chunks }) => {
			const meter = provider.meterStream(false);
			await runMeter(meter, chunks);
			expect(meter.usage()).toEqual(usage);
		});
	}

	it.each(anthropicMergeCases.cases)(
		"anthropic message_delta totals replace message_start values: $name",
		async ({ events, expected_final_usage_matches: expected }) => {
			const meter = anthropic.meterStream(false);
			await runMeter(meter, [bytesOf(sseOf(events.map((data) => ({ event: data.type, data }))))]);
			expect(meter.usage()).toEqual({
				inputTokens:
					expected.input_tokens +
					expected.cache_creation_input_tokens +
					expected.cache_read_input_tokens,
				outputTokens: expected.output_tokens,
				cachedInputTokens: expected.cache_read_input_tokens,
				cacheWriteInputTokens: expected.cache_creation_input_tokens,
			});
		},
	);

	it("anthropic: usage so far when the stream breaks before message_delta", async () => {
		const meter = anthropic.meterStream(false);
		const cut = anthropicRecordedSse.indexOf("event: content_block_delta");
		const writer = meter.stream.writable.getWriter();
		const drained = meter.stream.readable.pipeTo(new WritableStream()).catch(() => "broken");
		await writer.write(bytesOf(anthropicRecordedSse.slice(0, cut)));
		await writer.abort(new Error("provider connection reset"));
		expect(await drained).toBe("broken");
		expect(meter.usage()).toEqual({
			inputTokens: 135,
			outputTokens: 1,
			cachedInputTokens: 0,
			cacheWriteInputTokens: 0,
		});
	});

	it("openai chat: no usage when the stream breaks before the usage chunk", async () => {
		const meter = openai.meterStream(true);
		const cut = chatUsageSse.indexOf('"choices":[]');
		const writer = meter.stream.writable.getWriter();
		const drained = meter.stream.readable.pipeTo(new WritableStream()).catch(() => "broken");
		await writer.write(bytesOf(chatUsageSse.slice(0, cut)));
		await writer.abort(new Error("provider connection reset"));
		expect(await drained).toBe("broken");
		expect(meter.usage()).toBeUndefined();
	});
});
