// A batch's input, checked whole before anything runs: OpenAI's JSONL lines and Anthropic's inline
// requests, each problem named by its line (or index) so a person can fix the file.

/** One request of a batch, as it will be sent: its id, its provider path after /v1, its body. */
export interface BatchLine {
	customId: string;
	/** e.g. "/chat/completions" */
	path: string;
	body: Record<string, unknown>;
}

export interface BatchInputLimits {
	maxLines: number;
	/** The largest one line may be: a line travels through the queue in one message. */
	maxLineBytes: number;
	/** Models the tenant may use; undefined allows any (tenant model policies are issue 11's). */
	allowedModels?: ReadonlySet<string>;
}

export const BATCH_INPUT_LIMITS: BatchInputLimits = { maxLines: 10_000, maxLineBytes: 100_000 };

/** The OpenAI batch endpoints tollbooth runs, as a batch names them. */
export const OPENAI_BATCH_ENDPOINTS = [
	"/v1/chat/completions",
	"/v1/completions",
	"/v1/embeddings",
	"/v1/responses",
];

export type Checked<T> = { ok: true; value: T } | { ok: false; problems: string[] };

/** At most this many problems are listed in one error message. */
const PROBLEMS_SHOWN = 10;

export function problemsMessage(what: string, problems: string[]): string {
	const shown = problems.slice(0, PROBLEMS_SHOWN).join("; ");
	const more =
		problems.length > PROBLEMS_SHOWN ? `; and ${problems.length - PROBLEMS_SHOWN} more` : "";
	return `${what} is not valid: ${shown}${more}.`;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
	typeof value === "object" && value !== null && !Array.isArray(value);

/** The body's own problems: a model, allowed to the tenant, and no streaming in a batch. */
function bodyProblems(body: Record<string, unknown>, limits: BatchInputLimits): string[] {
	if (typeof body.model !== "string" || body.model === "") return ["its body has no model"];
	if (limits.allowedModels && !limits.allowedModels.has(body.model)) {
		return [`model "${body.model}" is not one this key may use`];
	}
	if (body.stream === true) return ["a batch line cannot stream (remove stream: true)"];
	return [];
}

/**
 * An uploaded OpenAI batch file: one JSON object per line, `{custom_id, method: "POST", url,
 * body}`. Every line's url must be the same endpoint (the batch names it when it is created).
 */
export function checkOpenAiBatchFile(text: string, limits: BatchInputLimits): Checked<BatchLine[]> {
	const problems: string[] = [];
	const lines: BatchLine[] = [];
	const seen = new Map<string, number>();
	const rows = text.split("\n");
	if (rows.at(-1)?.trim() === "") rows.pop();
	if (rows.length === 0) return { ok: false, problems: ["the file has no lines"] };
	if (rows.length > limits.maxLines) {
		return {
			ok: false,
			problems: [`it has ${rows.length} lines; a batch takes at most ${limits.maxLines}`],
		};
	}
	const encoder = new TextEncoder();
	let firstUrl: string | undefined;
	for (const [index, row] of rows.entries()) {
		const number = index + 1;
		const problem = (why: string) => problems.push(`line ${number}: ${why}`);
		if (encoder.encode(row).byteLength > limits.maxLineBytes) {
			problem(`it is longer than ${limits.maxLineBytes} bytes`);
			continue;
		}
		let parsed: unknown;
		try {
			parsed = JSON.parse(row);
		} catch {
			problem("it is not valid JSON");
			continue;
		}
		if (!isObject(parsed)) {
			problem("it is not a JSON object");
			continue;
		}
		const { custom_id: customId, method, url, body } = parsed;
		if (typeof customId !== "string" || customId === "") {
			problem("custom_id is missing");
			continue;
		}
		const earlier = seen.get(customId);
		if (earlier !== undefined) {
			problem(`custom_id "${customId}" is already used on line ${earlier}`);
			continue;
		}
		seen.set(customId, number);
		if (method !== "POST") {
			problem('method must be "POST"');
			continue;
		}
		if (typeof url !== "string" || !OPENAI_BATCH_ENDPOINTS.includes(url)) {
			problem(`url must be one of ${OPENAI_BATCH_ENDPOINTS.join(", ")}`);
			continue;
		}
		firstUrl ??= url;
		if (url !== firstUrl) {
			problem(`url ${url} differs from the file's first url ${firstUrl}`);
			continue;
		}
		if (!isObject(body)) {
			problem("body must be a JSON object");
			continue;
		}
		for (const why of bodyProblems(body, limits)) problem(why);
		lines.push({ customId, path: url.slice("/v1".length), body });
	}
	return problems.length > 0 ? { ok: false, problems } : { ok: true, value: lines };
}

/** The lines of a checked file whose url is not the batch's endpoint, as problems. */
export function endpointProblems(lines: BatchLine[], endpoint: string): string[] {
	return lines.flatMap((line, index) =>
		`/v1${line.path}` === endpoint
			? []
			: [`line ${index + 1}: url /v1${line.path} is not the batch's endpoint ${endpoint}`],
	);
}

const ANTHROPIC_CUSTOM_ID = /^[a-zA-Z0-9_-]{1,64}$/;

/** An Anthropic message batch's `requests: [{custom_id, params}]`, all for /v1/messages. */
export function checkAnthropicRequests(
	requests: unknown,
	limits: BatchInputLimits,
): Checked<BatchLine[]> {
	if (!Array.isArray(requests) || requests.length === 0) {
		return { ok: false, problems: ["requests must be a non-empty array"] };
	}
	if (requests.length > limits.maxLines) {
		return {
			ok: false,
			problems: [`it has ${requests.length} requests; a batch takes at most ${limits.maxLines}`],
		};
	}
	const problems: string[] = [];
	const lines: BatchLine[] = [];
	const seen = new Map<string, number>();
	const encoder = new TextEncoder();
	for (const [index, request] of requests.entries()) {
		const problem = (why: string) => problems.push(`requests[${index}]: ${why}`);
		if (!isObject(request)) {
			problem("it is not an object");
			continue;
		}
		const { custom_id: customId, params } = request;
		if (typeof customId !== "string" || !ANTHROPIC_CUSTOM_ID.test(customId)) {
			problem("custom_id must be 1 to 64 letters, digits, _ or -");
			continue;
		}
		const earlier = seen.get(customId);
		if (earlier !== undefined) {
			problem(`custom_id "${customId}" is already used by requests[${earlier}]`);
			continue;
		}
		seen.set(customId, index);
		if (!isObject(params)) {
			problem("params must be an object");
			continue;
		}
		if (encoder.encode(JSON.stringify(params)).byteLength > limits.maxLineBytes) {
			problem(`params are longer than ${limits.maxLineBytes} bytes`);
			continue;
		}
		if (typeof params.max_tokens !== "number") {
			problem("params.max_tokens is missing");
			continue;
		}
		if (!Array.isArray(params.messages)) {
			problem("params.messages is missing");
			continue;
		}
		for (const why of bodyProblems(params, limits)) problem(why);
		lines.push({ customId, path: "/messages", body: params });
	}
	return problems.length > 0 ? { ok: false, problems } : { ok: true, value: lines };
}
