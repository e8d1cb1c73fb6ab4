// The OpenAI-compatible side of the mock: chat completions, completions, embeddings, responses
// and models, with OpenAI's own error bodies, x-ratelimit-* headers and SSE shapes.
import { Hono } from "hono";
import * as v from "valibot";
import type { LimitsState } from "./limiter.ts";
import type { Admitted, Dialect, Simulator } from "./simulator.ts";
import { sseFrame } from "./stream.ts";
import { textOf } from "./text.ts";

const EMBEDDING_DIMENSIONS = 8;
const MODEL_IDS = ["gpt-4o", "gpt-4o-mini", "gpt-5.4", "text-embedding-3-small"];

function openaiError(
	status: number,
	message: string,
	type: string,
	code: string | null = null,
	param: string | null = null,
): Response {
	return Response.json({ error: { message, type, param, code } }, { status });
}

/** Go's time.Duration text, which OpenAI uses for x-ratelimit-reset-*: `120ms`, `6m0s`, `1m9.696s`. */
export function goDuration(durationMs: number): string {
	if (durationMs <= 0) return "0s";
	if (durationMs < 1000) return `${durationMs}ms`;
	const hours = Math.floor(durationMs / 3_600_000);
	const minutes = Math.floor((durationMs % 3_600_000) / 60_000);
	const seconds = `${Number(((durationMs % 60_000) / 1000).toFixed(3))}s`;
	if (hours > 0) return `${hours}h${minutes}m${seconds}`;
	return minutes > 0 ? `${minutes}m${seconds}` : seconds;
}

export const openaiDialect: Dialect = {
	apiKeyOf(request) {
		return request.headers.get("authorization")?.match(/^Bearer (.*)$/)?.[1];
	},
	unauthorized(sentKey) {
		if (sentKey === undefined) {
			return openaiError(
				401,
				"You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
				"invalid_request_error",
			);
		}
		return openaiError(
			401,
			`Incorrect API key provided: ${sentKey.slice(0, 4)}****. You can find your API key at https://platform.openai.com/account/api-keys.`,
			"invalid_request_error",
			"invalid_api_key",
		);
	},
	badRequest(problem) {
		switch (problem.kind) {
			case "json":
				return openaiError(
					400,
					"We could not parse the JSON body of your request. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.",
					"invalid_request_error",
				);
			case "field":
				return problem.missing
					? openaiError(
							400,
							`Missing required parameter: '${problem.param}'.`,
							"invalid_request_error",
							"missing_required_parameter",
							problem.param,
						)
					: openaiError(
							400,
							`Invalid value for '${problem.param}': ${problem.detail}`,
							"invalid_request_error",
							"invalid_value",
							problem.param,
						);
			case "header":
				return openaiError(
					400,
					`Invalid header '${problem.name}': ${problem.detail}`,
					"invalid_request_error",
				);
		}
	},
	rateLimited(decision, model) {
		const { limit, remaining } = decision.limits[decision.reason];
		const window = decision.reason === "tokens" ? "tokens per min (TPM)" : "requests per min (RPM)";
		if (decision.retryAfterMs === null) {
			return openaiError(
				429,
				`Request too large for ${model} in organization org-mock on ${window}: Limit ${limit}, Requested ${decision.requested}. The input or output tokens must be reduced in order to run successfully.`,
				decision.reason,
				"rate_limit_exceeded",
			);
		}
		const response = openaiError(
			429,
			`Rate limit reached for ${model} in organization org-mock on ${window}: Limit ${limit}, Used ${limit - remaining}, Requested ${decision.requested}. Please try again in ${goDuration(decision.retryAfterMs)}.`,
			decision.reason,
			"rate_limit_exceeded",
		);
		response.headers.set(
			"retry-after",
			String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))),
		);
		response.headers.set("retry-after-ms", String(decision.retryAfterMs));
		return response;
	},
	serverFault(fault) {
		if (fault === "500") {
			return openaiError(
				500,
				"The server had an error processing your request. Sorry about that! You can retry your request.",
				"server_error",
			);
		}
		// OpenAI has no 529: an overloaded engine is a 503.
		return openaiError(
			503,
			"The engine is currently overloaded, please try again later.",
			"server_error",
		);
	},
	notFound(request) {
		const path = new URL(request.url).pathname;
		return openaiError(404, `Invalid URL (${request.method} ${path})`, "invalid_request_error");
	},
	limitHeaders(limits: LimitsState) {
		return {
			"x-ratelimit-limit-requests": String(limits.requests.limit),
			"x-ratelimit-remaining-requests": String(limits.requests.remaining),
			"x-ratelimit-reset-requests": goDuration(limits.requests.resetMs),
			"x-ratelimit-limit-tokens": String(limits.tokens.limit),
			"x-ratelimit-remaining-tokens": String(limits.tokens.remaining),
			"x-ratelimit-reset-tokens": goDuration(limits.tokens.resetMs),
		};
	},
};

const model = v.pipe(v.string(), v.minLength(1));
const maxTokens = v.nullish(v.pipe(v.number(), v.safeInteger(), v.minValue(0)));
const stream = v.nullish(v.boolean());
const streamOptions = v.nullish(v.object({ include_usage: v.nullish(v.boolean()) }));

const chatRequest = v.object({
	model,
	messages: v.array(v.unknown()),
	stream,
	stream_options: streamOptions,
	max_tokens: maxTokens,
	max_completion_tokens: maxTokens,
});
const completionRequest = v.object({
	model,
	prompt: v.optional(v.unknown()),
	stream,
	stream_options: streamOptions,
	max_tokens: maxTokens,
});
const embeddingRequest = v.object({
	model,
	input: v.union([v.string(), v.array(v.unknown())]),
	dimensions: v.nullish(v.pipe(v.number(), v.safeInteger(), v.gtValue(0))),
	encoding_format: v.nullish(v.picklist(["float", "base64"])),
});
const responseRequest = v.object({
	model,
	input: v.optional(v.unknown()),
	instructions: v.nullish(v.string()),
	stream,
	max_output_tokens: maxTokens,
});

function randomId(prefix: string): string {
	return `${prefix}${crypto.randomUUID().replaceAll("-", "")}`;
}

function chatUsage(answer: Admitted<unknown>) {
	return {
		prompt_tokens: answer.promptTokens,
		completion_tokens: answer.completionTokens,
		total_tokens: answer.promptTokens + answer.completionTokens,
		prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
		completion_tokens_details: {
			reasoning_tokens: 0,
			audio_tokens: 0,
			accepted_prediction_tokens: 0,
			rejected_prediction_tokens: 0,
		},
	};
}

/**
 * A chat or legacy completion stream: one chunk per choice payload, the last one finishing, then
 * the usage chunk when asked for, then [DONE].
 */
function completionFrames(
	answer: Admitted<{ stream_options?: { include_usage?: boolean | null } | null }>,
	base: Record<string, unknown>,
	payloads: Record<string, unknown>[],
	finishReason: string,
): string[] {
	const includeUsage = answer.body.stream_options?.include_usage === true;
	const lastIndex = payloads.length - 1;
	const frames = payloads.map((payload, index) => {
		const finish_reason = index === lastIndex ? finishReason : null;
		const choices = [{ index: 0, ...payload, logprobs: null, finish_reason }];
		// With include_usage every chunk carries "usage": null until the final usage chunk.
		return sseFrame({ ...base, choices, ...(includeUsage && { usage: null }) });
	});
	if (includeUsage) frames.push(sseFrame({ ...base, choices: [], usage: chatUsage(answer) }));
	frames.push(sseFrame("[DONE]"));
	return frames;
}

function embeddingOf(inputIndex: number, dimensions: number): number[] {
	return Array.from(
		{ length: dimensions },
		(_, d) => Math.round(Math.sin(inputIndex + d + 1) * 1e6) / 1e6,
	);
}

function base64Floats(values: number[]): string {
	const bytes = new Uint8Array(new Float32Array(values).buffer);
	return btoa(String.fromCharCode(...bytes));
}

export function openaiRoutes(sim: Simulator): Hono {
	const app = new Hono();

	app.post("/chat/completions", async (c) => {
		const answer = await sim.admit(c.req.raw, openaiDialect, chatRequest, (body) => ({
			model: body.model,
			prompt: textOf(body.messages),
			maxTokens: body.max_completion_tokens ?? body.max_tokens,
		}));
		if (answer instanceof Response) return answer;
		const id = randomId("chatcmpl-");
		const finishReason = answer.truncated ? "length" : "stop";
		const base = (object: string) => ({
			id,
			object,
			created: answer.createdS,
			model: answer.model,
			system_fingerprint: "fp_mock",
		});
		if (answer.body.stream) {
			const payloads = [
				{ delta: { role: "assistant", content: "", refusal: null } },
				...answer.pieces.map((content) => ({ delta: { content } })),
				{ delta: {} },
			];
			const frames = completionFrames(
				answer,
				base("chat.completion.chunk"),
				payloads,
				finishReason,
			);
			return sim.stream(answer, frames);
		}
		return sim.json(answer, {
			...base("chat.completion"),
			choices: [
				{
					index: 0,
					message: {
						role: "assistant",
						content: answer.pieces.join(""),
						refusal: null,
						annotations: [],
					},
					logprobs: null,
					finish_reason: finishReason,
				},
			],
			usage: chatUsage(answer),
			service_tier: "default",
		});
	});

	app.post("/completions", async (c) => {
		const answer = await sim.admit(c.req.raw, openaiDialect, completionRequest, (body) => ({
			model: body.model,
			prompt: textOf(body.prompt),
			maxTokens: body.max_tokens,
		}));
		if (answer instanceof Response) return answer;
		const base = {
			id: randomId("cmpl-"),
			object: "text_completion",
			created: answer.createdS,
			model: answer.model,
		};
		const finishReason = answer.truncated ? "length" : "stop";
		if (answer.body.stream) {
			const payloads = [...answer.pieces.map((text) => ({ text })), { text: "" }];
			const frames = completionFrames(answer, base, payloads, finishReason);
			return sim.stream(answer, frames);
		}
		const { prompt_tokens, completion_tokens, total_tokens } = chatUsage(answer);
		return sim.json(answer, {
			...base,
			choices: [
				{ text: answer.pieces.join(""), index: 0, logprobs: null, finish_reason: finishReason },
			],
			usage: { prompt_tokens, completion_tokens, total_tokens },
		});
	});

	app.post("/embeddings", async (c) => {
		const answer = await sim.admit(c.req.raw, openaiDialect, embeddingRequest, (body) => ({
			model: body.model,
			prompt: textOf(body.input),
			maxTokens: 0,
		}));
		if (answer instanceof Response) return answer;
		const { input, dimensions, encoding_format } = answer.body;
		const inputCount = typeof input === "string" ? 1 : input.length;
		const data = Array.from({ length: inputCount }, (_, index) => {
			const vector = embeddingOf(index, dimensions ?? EMBEDDING_DIMENSIONS);
			return {
				object: "embedding",
				index,
				embedding: encoding_format === "base64" ? base64Floats(vector) : vector,
			};
		});
		return sim.json(answer, {
			object: "list",
			data,
			model: answer.model,
			usage: { prompt_tokens: answer.promptTokens, total_tokens: answer.promptTokens },
		});
	});

	app.post("/responses", async (c) => {
		const answer = await sim.admit(c.req.raw, openaiDialect, responseRequest, (body) => ({
			model: body.model,
			prompt: (body.instructions ?? "") + textOf(body.input),
			maxTokens: body.max_output_tokens,
		}));
		if (answer instanceof Response) return answer;
		const text = answer.pieces.join("");
		const responseId = randomId("resp_");
		const messageId = randomId("msg_");
		const part = { type: "output_text", text, annotations: [] };
		const message = {
			id: messageId,
			type: "message",
			status: "completed",
			role: "assistant",
			content: [part],
		};
		const response = (status: string, output: unknown[], usage: unknown) => ({
			id: responseId,
			object: "response",
			created_at: answer.createdS,
			status,
			error: null,
			incomplete_details: null,
			instructions: answer.body.instructions ?? null,
			max_output_tokens: answer.body.max_output_tokens ?? null,
			model: answer.model,
			output,
			parallel_tool_calls: true,
			previous_response_id: null,
			reasoning: { effort: null, summary: null },
			store: true,
			temperature: 1.0,
			text: { format: { type: "text" } },
			tool_choice: "auto",
			tools: [],
			top_p: 1.0,
			truncation: "disabled",
			usage,
			user: null,
			metadata: {},
		});
		const usage = {
			input_tokens: answer.promptTokens,
			input_tokens_details: { cached_tokens: 0 },
			output_tokens: answer.completionTokens,
			output_tokens_details: { reasoning_tokens: 0 },
			total_tokens: answer.promptTokens + answer.completionTokens,
		};
		if (!answer.body.stream) return sim.json(answer, response("completed", [message], usage));

		const at = { item_id: messageId, output_index: 0, content_index: 0 };
		const events: [string, Record<string, unknown>][] = [
			["response.created", { response: response("in_progress", [], null) }],
			["response.in_progress", { response: response("in_progress", [], null) }],
			[
				"response.output_item.added",
				{ output_index: 0, item: { ...message, status: "in_progress", content: [] } },
			],
			["response.content_part.added", { ...at, part: { ...part, text: "" } }],
			...answer.pieces.map((delta): [string, Record<string, unknown>] => [
				"response.output_text.delta",
				{ ...at, delta },
			]),
			["response.output_text.done", { ...at, text }],
			["response.content_part.done", { ...at, part }],
			["response.output_item.done", { output_index: 0, item: message }],
			["response.completed", { response: response("completed", [message], usage) }],
		];
		const frames = events.map(([type, fields], sequence_number) =>
			sseFrame({ type, sequence_number, ...fields }, type),
		);
		return sim.stream(answer, frames);
	});

	app.get("/models", (c) => {
		const refusal = sim.authenticate(c.req.raw, openaiDialect);
		if (refusal) return refusal;
		return c.json({
			object: "list",
			data: MODEL_IDS.map((id) => ({
				id,
				object: "model",
				created: 1_700_000_000,
				owned_by: "openai",
			})),
		});
	});

	return app;
}
