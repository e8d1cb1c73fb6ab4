// What a request costs against a budget: tokens, and dollars from a model's prices (in whole
// nano-dollars, so that sums are exact). Pure.

/** USD per million tokens. Cached input and cache writes default to the input price. */
export interface ModelPrice {
	input: number;
	cachedInput?: number;
	cacheWrite?: number;
	output: number;
}

/** Usage as the providers report it, normalised: inputTokens includes cached and cache writes. */
export interface TokenUsage {
	inputTokens: number;
	outputTokens: number;
	cachedInputTokens?: number;
	cacheWriteInputTokens?: number;
}

/** A request's charge: tokens (input + output, reasoning included in output) and nano-dollars. */
export interface Charge {
	tokens: number;
	nanoUsd: number;
}

const NANO_PER_USD = 1e9;
/** nano-dollars per token for a price in USD per million tokens. */
const NANO_PER_TOKEN = NANO_PER_USD / 1e6;

export function usdToNano(usd: number): number {
	return Math.round(usd * NANO_PER_USD);
}

export function nanoToUsd(nanoUsd: number): number {
	return nanoUsd / NANO_PER_USD;
}

/** The charge of reported usage; without a price the dollars are 0 (cost budgets refuse such models). */
export function chargeOf(usage: TokenUsage, price: ModelPrice | undefined): Charge {
	const tokens = usage.inputTokens + usage.outputTokens;
	if (!price) return { tokens, nanoUsd: 0 };
	const cached = usage.cachedInputTokens ?? 0;
	const written = usage.cacheWriteInputTokens ?? 0;
	const plain = Math.max(0, usage.inputTokens - cached - written);
	const perMillion =
		plain * price.input +
		cached * (price.cachedInput ?? price.input) +
		written * (price.cacheWrite ?? price.input) +
		usage.outputTokens * price.output;
	return { tokens, nanoUsd: Math.ceil(perMillion * NANO_PER_TOKEN) };
}

/** The most a request may cost: every prompt token at the full input price, every output token. */
export function estimatedCharge(
	promptTokens: number,
	maxOutputTokens: number,
	price: ModelPrice | undefined,
): Charge {
	return chargeOf({ inputTokens: promptTokens, outputTokens: maxOutputTokens }, price);
}
