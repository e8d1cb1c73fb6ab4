// A batch's input, checked whole before anything runs: OpenAI's JSONL lines and Anthropic's inline
// requests, each problem named by its line (or index) so a person can fix the file.
import type { BatchInputError } from "../core/batch-state.ts";
import { isRecord, parseJson } from "./estimate.ts";

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
	/** Why the tenant may not send this line's model, or undefined when it may. */
	refuseModel?: (model: string, body: Record<string, unknown>) => string | undefined;
}

export const BATCH_INPUT_LIMITS: BatchInputLimits = { maxLines: 10_000, maxLineBytes: 100_000 };

/** The OpenAI batch endpoints tollbooth runs, as a batch names them. */
export const OPENAI_BATCH_ENDPOINTS = [
	"/v1/chat/completions",
	"/v1/completions",
	"/v1/embeddings",
	"/v1/responses",
];

export type Checked<T> = { ok: true; value: T } | { ok: false; problems: BatchInputError[] };

/** At most this many problems are listed in one error message, and kept on a failed batch. */
const PROBLEMS_SHOWN = 10;
const PROBLEMS_KEPT = 100;

/** Where a problem is, as a person reads it: "line 3" (OpenAI) or "requests[2]" (Anthropic). */
const placeOf = (api: "openai" | "anthropic", problem: BatchInputError) =>
	problem.line === null
		? ""
		: api === "openai"
			? `line ${problem.line}: `
			: `requests[${problem.line}]: `;

export function problemsMessage(
	what: string,
	problems: BatchInputError[],
	api: "openai" | "anthropic" = "openai",
): string {
	const shown = problems
		.slice(0, PROBLEMS_SHOWN)
		.map((problem) => `${placeOf(api, problem)}${problem.message}`)
		.join("; ");
	const more =
		problems.length > PROBLEMS_SHOWN ? `; and ${problems.length - PROBLEMS_SHOWN} more` : "";
	return `${what} is not valid: ${shown}${more}.`;
}

/** A failed batch's errors as OpenAI lists them: each message names its line too. */
export function openAiBatchErrors(problems: BatchInputError[]): BatchInputError[] {
	return problems
		.slice(0, PROBLEMS_KEPT)
		.map((problem) => ({ ...problem, message: `${placeOf("openai", problem)}${problem.message}` }));
}

type Problem = Omit<BatchInputError, "line">;

const problem = (code: string, message: string, param: string | null = null): Problem => ({
	code,
	message,
	param,
});

/** The body's own problems: a model, allowed to the tenant, and no streaming in a batch. */
function bodyProblems(
	body: Record<string, unknown>,
	limits: BatchInputLimits,
	prefix: string,
): Problem[] {
	if (typeof body.model !== "string" || body.model === "") {
		return [problem("missing_required_parameter", "its body has no model", `${prefix}.model`)];
	}
	const refused = limits.refuseModel?.(body.model, body);
	if (refused) return [problem("model_not_allowed", refused, `${prefix}.model`)];
	if (body.stream === true) {
		return [
			problem(
				"invalid_value",
				"a batch line cannot stream (remove stream: true)",
				`${prefix}.stream`,
			),
		];
	}
	return [];
}

/** A whole-file problem, with no line. */
const fileProblem = (code: string, message: string): Checked<never> => ({
	ok: false,
	problems: [{ ...problem(code, message), line: null }],
});

/**
 * An uploaded OpenAI batch file: one JSON object per line, `{custom_id, method: "POST", url,
 * body}`. Every line's url must be the same endpoint (the batch names it when it is created).
 */
export function checkOpenAiBatchFile(text: string, limits: BatchInputLimits): Checked<BatchLine[]> {
	const problems: BatchInputError[] = [];
	const lines: BatchLine[] = [];
	const seen = new Map<string, number>();
	const rows = text.split("\n");
	if (rows.at(-1)?.trim() === "") rows.pop();
	if (rows.length === 0) return fileProblem("empty_file", "the file has no lines");
	if (rows.length > limits.maxLines) {
		return fileProblem(
			"too_many_lines",
			`it has ${rows.length} lines; a batch takes at most ${limits.maxLines}`,
		);
	}
	const encoder = new TextEncoder();
	let firstUrl: string | undefined;
	for (const [index, row] of rows.entries()) {
		const line = index + 1;
		const found = (...each: Problem[]) => {
			for (const one of each) problems.push({ ...one, line });
		};
		if (encoder.encode(row).byteLength > limits.maxLineBytes) {
			found(problem("line_too_large", `it is longer than ${limits.maxLineBytes} bytes`));
			continue;
		}
		const parsed = parseJson(row);
		if (parsed === undefined) {
			found(problem("invalid_json_line", "it is not valid JSON"));
			continue;
		}
		if (!isRecord(parsed)) {
			found(problem("invalid_json_line", "it is not a JSON object"));
			continue;
		}
		const { custom_id: customId, method, url, body } = parsed;
		if (typeof customId !== "string" || customId === "") {
			found(problem("missing_required_parameter", "custom_id is missing", "custom_id"));
			continue;
		}
		const earlier = seen.get(customId);
		if (earlier !== undefined) {
			found(
				problem(
					"duplicate_custom_id",
					`custom_id "${customId}" is already used on line ${earlier}`,
					"custom_id",
				),
			);
			continue;
		}
		seen.set(customId, line);
		if (method !== "POST") {
			found(problem("invalid_value", 'method must be "POST"', "method"));
			continue;
		}
		if (typeof url !== "string" || !OPENAI_BATCH_ENDPOINTS.includes(url)) {
			found(
				problem("invalid_url", `url must be one of ${OPENAI_BATCH_ENDPOINTS.join(", ")}`, "url"),
			);
			continue;
		}
		firstUrl ??= url;
		if (url !== firstUrl) {
			found(
				problem(
					"mismatched_url",
					`url ${url} differs from the file's first url ${firstUrl}`,
					"url",
				),
			);
			continue;
		}
		if (!isRecord(body)) {
			found(problem("invalid_value", "body must be a JSON object", "body"));
			continue;
		}
		found(...bodyProblems(body, limits, "body"));
		lines.push({ customId, path: url.slice("/v1".length), body });
	}
	return problems.length > 0 ? { ok: false, problems } : { ok: true, value: lines };
}

/** The lines of a checked file whose url is not the batch's endpoint, as problems. */
export function endpointProblems(lines: BatchLine[], endpoint: string): BatchInputError[] {
	return lines.flatMap((line, index) =>
		`/v1${line.path}` === endpoint
			? []
			: [
					{
						...problem(
							"mismatched_endpoint",
							`url /v1${line.path} is not the batch's endpoint ${endpoint}`,
							"url",
						),
						line: index + 1,
					},
				],
	);
}

const ANTHROPIC_CUSTOM_ID = /^[a-zA-Z0-9_-]{1,64}$/;

/** An Anthropic message batch's `requests: [{custom_id, params}]`, all for /v1/messages. */
export function checkAnthropicRequests(
	requests: unknown,
	limits: BatchInputLimits,
): Checked<BatchLine[]> {
	if (!Array.isArray(requests) || requests.length === 0) {
		return fileProblem("invalid_request", "requests must be a non-empty array");
	}
	if (requests.length > limits.maxLines) {
		return fileProblem(
			"too_many_lines",
			`it has ${requests.length} requests; a batch takes at most ${limits.maxLines}`,
		);
	}
	const problems: BatchInputError[] = [];
	const lines: BatchLine[] = [];
	const seen = new Map<string, number>();
	const encoder = new TextEncoder();
	for (const [index, request] of requests.entries()) {
		const found = (...each: Problem[]) => {
			for (const one of each) problems.push({ ...one, line: index });
		};
		if (!isRecord(request)) {
			found(problem("invalid_request", "it is not an object"));
			continue;
		}
		const { custom_id: customId, params } = request;
		if (typeof customId !== "string" || !ANTHROPIC_CUSTOM_ID.test(customId)) {
			found(problem("invalid_request", "custom_id must be 1 to 64 letters, digits, _ or -"));
			continue;
		}
		const earlier = seen.get(customId);
		if (earlier !== undefined) {
			found(
				problem(
					"invalid_request",
					`custom_id "${customId}" is already used by requests[${earlier}]`,
				),
			);
			continue;
		}
		seen.set(customId, index);
		if (!isRecord(params)) {
			found(problem("invalid_request", "params must be an object"));
			continue;
		}
		if (encoder.encode(JSON.stringify(params)).byteLength > limits.maxLineBytes) {
			found(problem("invalid_request", `params are longer than ${limits.maxLineBytes} bytes`));
			continue;
		}
		if (typeof params.max_tokens !== "number") {
			found(problem("invalid_request", "params.max_tokens is missing"));
			continue;
		}
		if (!Array.isArray(params.messages)) {
			found(problem("invalid_request", "params.messages is missing"));
			continue;
		}
		found(...bodyProblems(params, limits, "params"));
		lines.push({ customId, path: "/messages", body: params });
	}
	return problems.length > 0 ? { ok: false, problems } : { ok: true, value: lines };
}
