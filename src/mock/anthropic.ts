// The Anthropic-compatible side of the mock: messages (JSON and SSE) and models, with
// Anthropic's own error bodies and anthropic-ratelimit-* headers.
import { Hono } from "hono";
import * as v from "valibot";
import type { LimitsState } from "./limiter.ts";
import type { Dialect, Simulator } from "./simulator.ts";
import { sseFrame } from "./stream.ts";
import { textOf } from "./text.ts";

const MODELS = [
	{ id: "claude-sonnet-4-5-20250929", display_name: "Claude Sonnet 4.5" },
	{ id: "claude-haiku-4-5-20251001", display_name: "Claude Haiku 4.5" },
];

function anthropicError(status: number, type: string, message: string): Response {
	return Response.json({ type: "error", error: { type, message } }, { status });
}

/** Anthropic's reset headers are RFC 3339 instants, to the second, never earlier than the truth. */
function rfc3339(atMs: number): string {
	return new Date(Math.ceil(atMs / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

export const anthropicDialect: Dialect = {
	// x-api-key, or `Authorization: Bearer`, which is what @anthropic-ai/sdk 1.x sends for apiKey.
	apiKeyOf(request) {
		const bearer = request.headers.get("authorization")?.match(/^Bearer (.*)$/)?.[1];
		return request.headers.get("x-api-key") ?? bearer;
	},
	unauthorized(sentKey) {
		const message = sentKey === undefined ? "x-api-key header is required" : "invalid x-api-key";
		return anthropicError(401, "authentication_error", message);
	},
	badRequest(problem) {
		switch (problem.kind) {
			case "json":
				return anthropicError(400, "invalid_request_error", "The request body is not valid JSON.");
			case "field":
				return anthropicError(400, "invalid_request_error", `${problem.param}: ${problem.detail}`);
			case "header":
				return anthropicError(400, "invalid_request_error", `${problem.name}: ${problem.detail}`);
		}
	},
	rateLimited(decision) {
		const { limit } = decision.limits[decision.reason];
		const unit = decision.reason === "tokens" ? "tokens" : "requests";
		const response = anthropicError(
			429,
			"rate_limit_error",
			`This request would exceed the rate limit for your organization of ${limit} ${unit} per minute. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later.`,
		);
		if (decision.retryAfterMs !== null) {
			response.headers.set(
				"retry-after",
				String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))),
			);
		}
		return response;
	},
	serverFault(fault) {
		if (fault === "529") return anthropicError(529, "overloaded_error", "Overloaded");
		if (fault === "503") return anthropicError(503, "api_error", "Service unavailable");
		return anthropicError(500, "api_error", "Internal server error");
	},
	notFound() {
		return anthropicError(404, "not_found_error", "Not Found");
	},
	limitHeaders(limits: LimitsState, nowMs: number) {
		return {
			"anthropic-ratelimit-requests-limit": String(limits.requests.limit),
			"anthropic-ratelimit-requests-remaining": String(limits.requests.remaining),
			"anthropic-ratelimit-requests-reset": rfc3339(nowMs + limits.requests.resetMs),
			"anthropic-ratelimit-tokens-limit": String(limits.tokens.limit),
			"anthropic-ratelimit-tokens-remaining": String(limits.tokens.remaining),
			"anthropic-ratelimit-tokens-reset": rfc3339(nowMs + limits.tokens.resetMs),
		};
	},
};

const messagesRequest = v.object({
	model: v.pipe(v.string(), v.minLength(1)),
	messages: v.array(v.unknown()),
	system: v.optional(v.unknown()),
	max_tokens: v.nullish(v.pipe(v.number(), v.safeInteger(), v.minValue(0))),
	stream: v.nullish(v.boolean()),
});

export function anthropicRoutes(sim: Simulator): Hono {
	const app = new Hono();

	app.post("/messages", async (c) => {
		const answer = await sim.admit(c.req.raw, anthropicDialect, messagesRequest, (body) => ({
			model: body.model,
			prompt: textOf(body.system) + textOf(body.messages),
			maxTokens: body.max_tokens,
		}));
		if (answer instanceof Response) return answer;
		const stopReason = answer.truncated ? "max_tokens" : "end_turn";
		const message = {
			id: `msg_${crypto.randomUUID().replaceAll("-", "")}`,
			type: "message",
			role: "assistant",
			model: answer.model,
		};
		const usage = {
			input_tokens: answer.promptTokens,
			cache_creation_input_tokens: 0,
			cache_read_input_tokens: 0,
			cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
			output_tokens: answer.completionTokens,
			service_tier: "standard",
		};
		if (!answer.body.stream) {
			return sim.json(answer, {
				...message,
				content: [{ type: "text", text: answer.pieces.join("") }],
				stop_reason: stopReason,
				stop_sequence: null,
				usage,
			});
		}
		const events: [string, Record<string, unknown>][] = [
			[
				"message_start",
				{
					// As the real API does: the start reports output_tokens 1, message_delta the total.
					message: {
						...message,
						content: [],
						stop_reason: null,
						stop_sequence: null,
						usage: { ...usage, output_tokens: 1 },
					},
				},
			],
			["content_block_start", { index: 0, content_block: { type: "text", text: "" } }],
			["ping", {}],
			...answer.pieces.map((text): [string, Record<string, unknown>] => [
				"content_block_delta",
				{ index: 0, delta: { type: "text_delta", text } },
			]),
			["content_block_stop", { index: 0 }],
			[
				"message_delta",
				{
					delta: { stop_reason: stopReason, stop_sequence: null },
					usage: { output_tokens: answer.completionTokens },
				},
			],
			["message_stop", {}],
		];
		const frames = events.map(([type, fields]) => sseFrame({ type, ...fields }, type));
		return sim.stream(answer, frames);
	});

	app.get("/models", (c) => {
		const refusal = sim.authenticate(c.req.raw, anthropicDialect);
		if (refusal) return refusal;
		return c.json({
			data: MODELS.map((model) => ({
				type: "model",
				...model,
				created_at: "2025-09-29T00:00:00Z",
			})),
			has_more: false,
			first_id: MODELS[0]?.id ?? null,
			last_id: MODELS.at(-1)?.id ?? null,
		});
	});

	return app;
}
