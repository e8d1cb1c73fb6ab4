// A batch line's result as recorded once, and as written into the result files: OpenAI's output
// and error file lines, Anthropic's results lines. Pure, so the Batch object can finalize alone.
import type { BatchApi, UnfinishedReason } from "./batch-state.ts";

export type LineResult =
	/** The provider answered; a non-2xx answer is a failed line, with the provider's body. */
	| { kind: "answered"; statusCode: number; requestId: string; body: unknown }
	/** No usable answer after every attempt (the dead-letter queue's verdict). */
	| { kind: "failed"; code: string; message: string };

export type LineOutcome = "succeeded" | "failed";

export function outcomeOf(result: LineResult): LineOutcome {
	return result.kind === "answered" && result.statusCode >= 200 && result.statusCode < 300
		? "succeeded"
		: "failed";
}

const UNFINISHED_MESSAGES: Record<UnfinishedReason, string> = {
	cancelled: "This request was not executed because the batch was cancelled.",
	expired: "This request could not be executed before the completion window expired.",
};

/** One line of an OpenAI output or error file. */
export function openaiResultLine(
	customId: string,
	lineId: string,
	result: LineResult | UnfinishedReason,
): string {
	if (typeof result === "string") {
		const error = { code: `batch_${result}`, message: UNFINISHED_MESSAGES[result] };
		return JSON.stringify({ id: lineId, custom_id: customId, response: null, error });
	}
	if (result.kind === "failed") {
		const error = { code: result.code, message: result.message };
		return JSON.stringify({ id: lineId, custom_id: customId, response: null, error });
	}
	const response = {
		status_code: result.statusCode,
		request_id: result.requestId,
		body: result.body,
	};
	return JSON.stringify({ id: lineId, custom_id: customId, response, error: null });
}

/** One line of an Anthropic message batch's results. */
export function anthropicResultLine(
	customId: string,
	result: LineResult | UnfinishedReason,
): string {
	if (result === "cancelled")
		return JSON.stringify({ custom_id: customId, result: { type: "canceled" } });
	if (result === "expired")
		return JSON.stringify({ custom_id: customId, result: { type: "expired" } });
	if (outcomeOf(result) === "succeeded" && result.kind === "answered") {
		return JSON.stringify({
			custom_id: customId,
			result: { type: "succeeded", message: result.body },
		});
	}
	return JSON.stringify({
		custom_id: customId,
		result: { type: "errored", error: anthropicError(result) },
	});
}

/** The provider's own error body when it sent one, else one in its shape. */
function anthropicError(result: LineResult): unknown {
	if (result.kind === "answered") {
		const body = result.body as { type?: unknown } | null;
		if (body && typeof body === "object" && body.type === "error") return body;
		const message = `The provider answered with status ${result.statusCode}.`;
		return { type: "error", error: { type: "api_error", message } };
	}
	return { type: "error", error: { type: "api_error", message: result.message } };
}

/** A result line in the batch's API. */
export function resultLine(
	api: BatchApi,
	customId: string,
	lineId: string,
	result: LineResult | UnfinishedReason,
): string {
	return api === "openai"
		? openaiResultLine(customId, lineId, result)
		: anthropicResultLine(customId, result);
}
