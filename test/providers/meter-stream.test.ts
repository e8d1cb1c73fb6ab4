// What the client receives through meterStream: the provider's bytes unchanged and on time, minus
// only the usage chunk tollbooth injected itself, whatever the chunking and line endings.

import type OpenAI from "openai";
import { Stream } from "openai/streaming";
import { describe, expect, it } from "vitest";
import { providerFor } from "../../src/providers/index.ts";
import type { StreamMeter } from "../../src/providers/types.ts";
import anthropicBasicSse from "../fixtures/providers/anthropic/message_stream_basic_sdk.sse?raw";
import anthropicEndsWithErrorSse from "../fixtures/providers/anthropic/message_stream_ends_with_error_ASSEMBLED.sse?raw";
import anthropicRecordedSse from "../fixtures/providers/anthropic/message_stream_recorded.sse?raw";
import anthropicToolUseSse from "../fixtures/providers/anthropic/message_stream_tool_use_sdk.sse?raw";
import chunksApiRef from "../fixtures/providers/openai/chat_completion_chunks_apiref.json";
import chatParallelToolCallsSse from "../fixtures/providers/openai/chat_completion_stream_parallel_tool_calls.sse?raw";
import chatToolCallsSse from "../fixtures/providers/openai/chat_completion_stream_tool_calls.sse?raw";
import chatUsageSse from "../fixtures/providers/openai/chat_completion_stream_usage.sse?raw";
import responseApiRefSse from "../fixtures/providers/openai/response_stream_apiref.sse?raw";
import responseSdkSnapshotSse from "../fixtures/providers/openai/response_stream_sdk_snapshot.sse?raw";
import { bytesOf, concat, runMeter, splitsOf, sseOf, textOf } from "./stream-helpers.ts";

const openai = providerFor("openai");
const anthropic = providerFor("anthropic");

const withCrlf = (sse: string) => sse.replaceAll("\n", "\r\n");
const withCr = (sse: string) => sse.replaceAll("\n", "\r");

/** Line-ending variants of a stream: as recorded (LF), CRLF, and bare CR. */
function lineEndingsOf(sse: string) {
	return [
		{ endings: "LF", sse },
		{ endings: "CRLF", sse: withCrlf(sse) },
		{ endings: "CR", sse: withCr(sse) },
	];
}

/** The usage-only chunk of a stream (the event that carries "choices":[]), with its blank line. */
function usageEventOf(sse: string): string {
	const start = sse.lastIndexOf("data: ", sse.indexOf('"choices":[]'));
	return sse.slice(start, sse.indexOf("\n\n", start) + 2);
}

// Non-ASCII content, so that chunk splits fall inside multi-byte UTF-8 characters.
const multiByteChatSse = chatUsageSse.replace('"content":"San"', '"content":"Sän 🌉 旧金山"');
const multiByteAnthropicSse = anthropicBasicSse.replace('"text":"Hello"', '"text":"Héllo 👋 世界"');

describe("nothing injected: the client gets the provider's bytes unchanged", () => {
	const streams = [
		{ name: "openai chat usage", provider: openai, sse: chatUsageSse },
		{ name: "openai chat tool calls", provider: openai, sse: chatToolCallsSse },
		{ name: "openai chat parallel tool calls", provider: openai, sse: chatParallelToolCallsSse },
		{ name: "openai chat multi-byte", provider: openai, sse: multiByteChatSse },
		{ name: "openai responses api-ref", provider: openai, sse: responseApiRefSse },
		{ name: "openai responses sdk snapshot", provider: openai, sse: responseSdkSnapshotSse },
		{ name: "anthropic recorded", provider: anthropic, sse: anthropicRecordedSse },
		{ name: "anthropic basic", provider: anthropic, sse: anthropicBasicSse },
		{ name: "anthropic multi-byte", provider: anthropic, sse: multiByteAnthropicSse },
		{ name: "anthropic tool use", provider: anthropic, sse: anthropicToolUseSse },
		{ name: "anthropic ends with error", provider: anthropic, sse: anthropicEndsWithErrorSse },
	];
	for (const { name, provider, sse } of streams) {
		for (const variant of lineEndingsOf(sse)) {
			it.each(splitsOf(variant.sse))(`${name}, ${variant.endings} ($name)`, async ({ chunks }) => {
				const meter = provider.meterStream(false);
				const received = await runMeter(meter, chunks);
				expect(concat(received)).toEqual(bytesOf(variant.sse));
				expect(meter.usage()).toBeDefined();
			});
		}
	}

	it("a chunk is passed on the moment it arrives, even mid-event", async () => {
		const meter = anthropic.meterStream(false);
		const partial = bytesOf(anthropicRecordedSse.slice(0, 40));
		expect(await firstOutputAfterWriting(meter, partial)).toEqual(partial);
	});
});

describe("injected usage: only the usage-only chunk is hidden", () => {
	for (const { name, sse } of [
		{ name: "chat usage", sse: chatUsageSse },
		{ name: "chat tool calls", sse: chatToolCallsSse },
		{ name: "chat parallel tool calls", sse: chatParallelToolCallsSse },
		{ name: "chat multi-byte", sse: multiByteChatSse },
	]) {
		const expectedLf = sse.replace(usageEventOf(sse), "");
		it("the fixture has exactly one usage chunk to hide", () => {
			expect(expectedLf.length).toBeLessThan(sse.length);
			expect(expectedLf).not.toContain('"usage"');
			expect(expectedLf.endsWith("data: [DONE]\n\n")).toBe(true);
		});
		for (const variant of lineEndingsOf(sse)) {
			const expected =
				variant.endings === "LF"
					? expectedLf
					: variant.endings === "CRLF"
						? withCrlf(expectedLf)
						: withCr(expectedLf);
			it.each(splitsOf(variant.sse))(`${name}, ${variant.endings} ($name)`, async ({ chunks }) => {
				const meter = openai.meterStream(true);
				const received = await runMeter(meter, chunks);
				expect(textOf(received)).toBe(expected);
				expect(meter.usage()).toBeDefined();
			});
		}
	}

	it("a CRLF split between the usage chunk's CR and LF leaves no stray line end", async () => {
		const sse = withCrlf(chatUsageSse);
		const usageEvent = withCrlf(usageEventOf(chatUsageSse));
		const splitAt = sse.indexOf(usageEvent) + usageEvent.length - 1; // between the final \r and \n
		const meter = openai.meterStream(true);
		const received = await runMeter(meter, [
			bytesOf(sse.slice(0, splitAt)),
			bytesOf(sse.slice(splitAt)),
		]);
		expect(textOf(received)).toBe(sse.replace(usageEvent, ""));
	});

	it("a chunk with usage that also carries choices is the provider's own, and passes", async () => {
		const [first, , last] = chunksApiRef;
		const sse = sseOf([
			{ data: first },
			{ data: { ...last, usage: { prompt_tokens: 5, completion_tokens: 2 } } },
		]);
		const meter = openai.meterStream(true);
		expect(textOf(await runMeter(meter, [bytesOf(sse)]))).toBe(sse);
		expect(meter.usage()).toEqual({ inputTokens: 5, outputTokens: 2 });
	});

	it("each event is passed on as soon as its blank line arrives, not before", async () => {
		const meter = openai.meterStream(true);
		const firstEvent = chatUsageSse.slice(0, chatUsageSse.indexOf("\n\n") + 2);
		const writer = meter.stream.writable.getWriter();
		const reader = meter.stream.readable.getReader();

		const firstRead = reader.read();
		await writer.write(bytesOf(firstEvent.slice(0, -1))); // all but the blank line
		expect(await settledValue(firstRead)).toBe("pending");
		await writer.write(bytesOf("\n"));
		expect(await settledValue(firstRead)).toEqual({ done: false, value: bytesOf(firstEvent) });
	});

	it("the official SDK reads the forwarded stream with no usage chunk and no error", async () => {
		const meter = openai.meterStream(true);
		const body = new Response(chatUsageSse).body?.pipeThrough(meter.stream);
		const stream = Stream.fromSSEResponse<OpenAI.ChatCompletionChunk>(
			new Response(body, { headers: { "content-type": "text/event-stream" } }),
			new AbortController(),
		);
		const chunks: OpenAI.ChatCompletionChunk[] = [];
		for await (const chunk of stream) chunks.push(chunk);
		expect(chunks).toHaveLength(chatUsageSse.split("data: {").length - 2);
		expect(chunks.every((chunk) => chunk.choices.length === 1 && chunk.usage === undefined)).toBe(
			true,
		);
		expect(meter.usage()).toEqual({ inputTokens: 79, outputTokens: 14, reasoningTokens: 0 });
	});
});

/** Writes `chunk` and returns what the client can read right after, without waiting for more. */
async function firstOutputAfterWriting(meter: StreamMeter, chunk: Uint8Array): Promise<unknown> {
	const reader = meter.stream.readable.getReader();
	const read = reader.read();
	await meter.stream.writable.getWriter().write(chunk);
	const result = await settledValue(read);
	return result === "pending" ? result : (result as ReadableStreamReadResult<Uint8Array>).value;
}

/** The promise's result if it has already settled, else "pending" (no timers involved). */
function settledValue<T>(promise: Promise<T>): Promise<T | "pending"> {
	return Promise.race([promise, Promise.resolve("pending" as const)]);
}
