// Error bodies and in-stream error events, read back by the official openai and anthropic SDKs.

import * as AnthropicErrors from "@anthropic-ai/sdk/error";
import { Stream as AnthropicStream } from "@anthropic-ai/sdk/streaming";
import * as OpenAIErrors from "openai/error";
import { Stream as OpenAIStream } from "openai/streaming";
import { describe, expect, it } from "vitest";
import { providerFor } from "../../src/providers/index.ts";
import anthropicErrors from "../fixtures/providers/anthropic/errors_observed.json";
import anthropicEndsWithErrorSse from "../fixtures/providers/anthropic/message_stream_ends_with_error_ASSEMBLED.sse?raw";
import anthropicErrorEventSse from "../fixtures/providers/anthropic/message_stream_error_event_sdk.sse?raw";
import chatUsageSse from "../fixtures/providers/openai/chat_completion_stream_usage.sse?raw";
import openaiErrors from "../fixtures/providers/openai/errors.json";

const openai = providerFor("openai");
const anthropic = providerFor("anthropic");
const message = "tollbooth: the queue for this key is full; retry in 2 s.";

/** The events before the usage chunk of a recorded chat stream: a stream that broke mid-way. */
const chatStreamStart = chatUsageSse.slice(0, chatUsageSse.indexOf('data: {"id"', 400));

function sseResponse(text: string): Response {
	return new Response(text, { headers: { "content-type": "text/event-stream" } });
}

describe("openai error bodies", () => {
	it.each([
		[400, OpenAIErrors.BadRequestError, "invalid_request_error", null],
		[401, OpenAIErrors.AuthenticationError, "invalid_request_error", "invalid_api_key"],
		[403, OpenAIErrors.PermissionDeniedError, "invalid_request_error", null],
		[404, OpenAIErrors.NotFoundError, "invalid_request_error", "not_found"],
		[409, OpenAIErrors.ConflictError, "invalid_request_error", null],
		[413, OpenAIErrors.APIError, "invalid_request_error", "request_too_large"],
		[422, OpenAIErrors.UnprocessableEntityError, "invalid_request_error", null],
		[429, OpenAIErrors.RateLimitError, "requests", "rate_limit_exceeded"],
		[500, OpenAIErrors.InternalServerError, "server_error", null],
		[502, OpenAIErrors.InternalServerError, "server_error", "bad_gateway"],
		[503, OpenAIErrors.InternalServerError, "server_error", "service_unavailable"],
		[504, OpenAIErrors.InternalServerError, "server_error", "timeout"],
	])("%i becomes the SDK's %O with type %s and code %s", (status, errorClass, type, code) => {
		const body = openai.errorBody(status, message);
		const error = OpenAIErrors.APIError.generate(status, body as object, undefined, new Headers());
		expect(error).toBeInstanceOf(errorClass);
		expect(error.message).toBe(`${status} ${message}`);
		expect({ type: error.type, code: error.code, param: error.param }).toEqual({
			type,
			code,
			param: null,
		});
	});

	it("has exactly the fields the API's ErrorResponse schema requires", () => {
		const required = openaiErrors.schema.Error.required;
		for (const status of [400, 401, 429, 500, 503]) {
			const body = openai.errorBody(status, message) as { error: Record<string, unknown> };
			expect(Object.keys(body)).toEqual(openaiErrors.schema.ErrorResponse.required);
			expect(Object.keys(body.error).sort()).toEqual([...required].sort());
		}
	});

	it.each(openaiErrors.cases.filter((c) => [400, 401, 500].includes(c.status)))(
		"matches the real $name body's type and code",
		({ status, body }) => {
			const ours = openai.errorBody(status, body.error.message) as typeof body;
			expect(ours.error.type).toBe(body.error.type);
			if (status === 401) expect(ours.error.code).toBe(body.error.code);
		},
	);

	it("an error event after some chunks makes the SDK's stream throw that error", async () => {
		const stream = OpenAIStream.fromSSEResponse(
			sseResponse(chatStreamStart + openai.errorEvent(502, message)),
			new AbortController(),
		);
		let chunksRead = 0;
		const failure = await (async () => {
			for await (const _chunk of stream) chunksRead++;
		})().catch((error: unknown) => error);
		expect(chunksRead).toBeGreaterThan(0);
		expect(failure).toBeInstanceOf(OpenAIErrors.APIError);
		expect((failure as OpenAIErrors.APIError).message).toBe(message);
		expect((failure as OpenAIErrors.APIError).type).toBe("server_error");
	});
});

describe("anthropic error bodies", () => {
	const sdkClass: Record<string, unknown> = {
		400: AnthropicErrors.BadRequestError,
		401: AnthropicErrors.AuthenticationError,
		402: AnthropicErrors.PaymentRequiredError,
		403: AnthropicErrors.PermissionDeniedError,
		404: AnthropicErrors.NotFoundError,
		413: AnthropicErrors.ContentTooLargeError,
		429: AnthropicErrors.RateLimitError,
		500: AnthropicErrors.InternalServerError,
		504: AnthropicErrors.GatewayTimeoutError,
		529: AnthropicErrors.OverloadedError,
	};
	const docsTable = Object.entries(anthropicErrors.docs_status_to_type)
		.filter(([status]) => /^\d+$/.test(status))
		.map(([status, type]) => ({ status: Number(status), type: type.split(" ")[0] as string }));

	it("covers the whole documented status table", () => {
		expect(docsTable.map((row) => row.status).sort()).toEqual(
			Object.keys(sdkClass).map(Number).sort(),
		);
	});

	it.each(docsTable)(
		"$status is the documented $type and the SDK's own class",
		({ status, type }) => {
			const body = anthropic.errorBody(status, message);
			expect(body).toEqual({ type: "error", error: { type, message } });
			const error = AnthropicErrors.APIError.generate(
				status,
				body as object,
				undefined,
				new Headers(),
			);
			expect(error).toBeInstanceOf(sdkClass[status] as typeof AnthropicErrors.APIError);
			expect(error.type).toBe(type);
		},
	);

	it.each([
		[502, "api_error", AnthropicErrors.InternalServerError],
		[503, "overloaded_error", AnthropicErrors.ServiceUnavailableError],
		[418, "invalid_request_error", AnthropicErrors.APIError],
	])("%i (not in the docs table) is %s", (status, type, errorClass) => {
		const body = anthropic.errorBody(status, message);
		expect(body).toEqual({ type: "error", error: { type, message } });
		expect(
			AnthropicErrors.APIError.generate(status, body as object, undefined, new Headers()),
		).toBeInstanceOf(errorClass);
	});

	it.each(anthropicErrors.cases)("has the envelope of the real $name body", ({ status, body }) => {
		const ours = anthropic.errorBody(status, body.error.message) as typeof body;
		expect(ours.type).toBe(body.type);
		expect(ours.error).toEqual(body.error);
	});

	it("the error event is the SDK fixture's event", () => {
		const [eventLine, dataLine] = anthropicErrorEventSse.trimEnd().split("\n");
		const [ourEventLine, ourDataLine] = anthropic
			.errorEvent(529, "Overloaded")
			.trimEnd()
			.split("\n");
		expect(ourEventLine).toBe(eventLine);
		expect(JSON.parse(ourDataLine?.slice(6) ?? "")).toEqual(JSON.parse(dataLine?.slice(6) ?? ""));
		expect(anthropic.errorEvent(529, "Overloaded").endsWith("\n\n")).toBe(true);
	});

	it("an error event after some events makes the SDK's stream throw it", async () => {
		const streamStart = anthropicEndsWithErrorSse.slice(
			0,
			anthropicEndsWithErrorSse.indexOf("event: error"),
		);
		const stream = AnthropicStream.fromSSEResponse(
			sseResponse(streamStart + anthropic.errorEvent(529, "Overloaded")),
			new AbortController(),
		);
		let eventsRead = 0;
		const failure = await (async () => {
			for await (const _event of stream) eventsRead++;
		})().catch((error: unknown) => error);
		expect(eventsRead).toBeGreaterThan(0);
		expect(failure).toBeInstanceOf(AnthropicErrors.APIError);
		expect((failure as AnthropicErrors.APIError).type).toBe("overloaded_error");
		expect((failure as AnthropicErrors.APIError).message).toContain("Overloaded");
	});
});
