// Conservative token estimates from a request body, shared by every provider. The provider's
// reported usage reconciles each estimate after the response, so this only has to be safe and cheap.

import type { Estimate } from "./types.ts";

/**
 * Why not a real tokenizer: BPE tables are megabytes per model family (too big for a Worker
 * bundle and slow to load per isolate), differ between providers and change with new models.
 * UTF-8 bytes / 4 over the JSON of the prompt-bearing fields over-counts English (about 4
 * characters per token, and JSON quoting and keys add bytes); it can under-count dense scripts
 * such as CJK, which the reconciliation after the response corrects.
 */
const BYTES_PER_TOKEN = 4;
/** Role markers and separators each message adds around its content (OpenAI documents ~3). */
const TOKENS_PER_MESSAGE = 4;
/**
 * The size of a base64 attachment says little about its token cost: both providers downscale
 * images to at most about 1,600 tokens each. So each attachment counts this flat allowance
 * (a many-page PDF costs more, which the reconciliation charges later).
 */
const TOKENS_PER_ATTACHMENT = 1_600;

const encoder = new TextEncoder();
const DATA_URL = /^data:[^,]{0,200};base64,/;

export function isRecord(value: unknown): value is Record<string, unknown> {
	return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The JSON value of `text`, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
	try {
		return JSON.parse(text);
	} catch {
		return undefined;
	}
}

/** Estimated prompt tokens of `fields` (a body's prompt-bearing values) holding `messagesInPrompt` messages. */
export function estimatePromptTokens(fields: readonly unknown[], messagesInPrompt: number): number {
	let attachments = 0;
	const withoutAttachments = (_key: string, value: unknown): unknown => {
		if (typeof value === "string" && DATA_URL.test(value)) {
			attachments++;
			return "";
		}
		// Anthropic image/document blocks: { type: "base64", media_type, data }.
		if (isRecord(value) && value.type === "base64" && typeof value.data === "string") {
			attachments++;
			return { ...value, data: "" };
		}
		return value;
	};
	let bytes = 0;
	for (const field of fields) {
		if (field === undefined) continue;
		bytes += encoder.encode(JSON.stringify(field, withoutAttachments)).byteLength;
	}
	const textTokens = Math.ceil(bytes / BYTES_PER_TOKEN);
	return textTokens + messagesInPrompt * TOKENS_PER_MESSAGE + attachments * TOKENS_PER_ATTACHMENT;
}

/**
 * The output-token limit the client set in `fields` (the first one present), undefined when it set
 * none (absent or null), or the message of a 400 when one is not a non-negative integer: a value
 * that decides what is reserved is never guessed.
 */
export function tokenLimit(
	body: Record<string, unknown>,
	...fields: string[]
): number | undefined | string {
	let limit: number | undefined;
	for (const field of fields) {
		const value = body[field];
		if (value === undefined || value === null) continue;
		if (!Number.isSafeInteger(value) || (value as number) < 0) {
			return `"${field}" must be a non-negative integer; got ${JSON.stringify(value)}.`;
		}
		limit ??= value as number;
	}
	return limit;
}

/**
 * How many completions one request asks for (`n`, `best_of`; output allowance scales with it),
 * or the message of a 400 when one is not a positive integer.
 */
export function choiceCount(body: Record<string, unknown>, ...fields: string[]): number | string {
	let count = 1;
	for (const field of fields) {
		const value = body[field];
		if (value === undefined || value === null) continue;
		if (!Number.isSafeInteger(value) || (value as number) < 1) {
			return `"${field}" must be a positive integer; got ${JSON.stringify(value)}.`;
		}
		count = Math.max(count, value as number);
	}
	return count;
}

/** Messages in a conversation field: an array counts its items, a lone string or object one. */
export function messageCount(value: unknown): number {
	return Array.isArray(value) ? value.length : value === undefined ? 0 : 1;
}

export function invalid(message: string): Estimate {
	return { kind: "invalid", message };
}

export function estimateOf(
	model: string,
	body: Record<string, unknown>,
	promptTokens: number,
	maxOutputTokens: number,
): Estimate {
	return {
		kind: "estimate",
		model,
		stream: body.stream === true,
		promptTokens,
		maxOutputTokens,
		tokens: promptTokens + maxOutputTokens,
	};
}

/**
 * A request to an endpoint tollbooth does not meter (models, files, batches, moderations…) costs
 * one request and no tokens: those endpoints report no token usage to reconcile a reservation with.
 */
export function unmeteredEstimate(body: unknown): Estimate {
	const record = isRecord(body) ? body : {};
	const model = typeof record.model === "string" ? record.model : "";
	return estimateOf(model, record, 0, 0);
}

export const BODY_NOT_AN_OBJECT =
	"The request body must be a JSON object (send Content-Type: application/json).";

export function missingModelMessage(exampleModel: string): string {
	return `Missing or invalid "model": set it to the name of the model to call, e.g. "model": "${exampleModel}".`;
}
