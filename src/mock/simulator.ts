// What every generation route shares: auth, body, fault, limits, latency and counters, then the
// two ways to answer (a JSON body, an SSE stream) with the faults that break them.
import * as v from "valibot";
import { type LimitDecision, type LimitsState, MockLimiter } from "./limiter.ts";
import { MOCK_FAULTS, type MockFault, type MockOptions } from "./options.ts";
import { pacedBody, sleep, untilAborted } from "./stream.ts";
import { answerPieces, promptTokensOf } from "./text.ts";

export interface MockStats {
	requests: number;
	ok: number;
	rateLimited: number;
	byStatus: Record<string, number>;
	promptTokens: number;
	completionTokens: number;
	lastAuthorization?: string;
	lastApiKey?: string;
	lastPath?: string;
	lastBody?: unknown;
}

export type BodyProblem =
	| { kind: "json" }
	| { kind: "field"; param: string; missing: boolean; detail: string }
	| { kind: "header"; name: string; detail: string };

export type RateLimited = Extract<LimitDecision, { kind: "limited" }>;
export type ServerFault = "500" | "503" | "529";

/** How one provider says things: where its key is, its error bodies, its rate-limit headers. */
export interface Dialect {
	apiKeyOf(request: Request): string | undefined;
	unauthorized(sentKey: string | undefined): Response;
	badRequest(problem: BodyProblem): Response;
	/** The 429, with its retry-after headers; the simulator adds the limit headers. */
	rateLimited(decision: RateLimited, model: string): Response;
	serverFault(fault: ServerFault): Response;
	notFound(request: Request): Response;
	limitHeaders(limits: LimitsState, nowMs: number): Record<string, string>;
}

/** What a route reads from its validated body. */
export interface Ask {
	model: string;
	prompt: string;
	/** The request's cap on the answer; embeddings pass 0. */
	maxTokens?: number | null;
}

export interface Admitted<Body> {
	body: Body;
	model: string;
	promptTokens: number;
	completionTokens: number;
	/** The answer, one piece per token. */
	pieces: string[];
	/** The request's max tokens cut the answer short. */
	truncated: boolean;
	createdS: number;
	fault: MockFault;
	headers: Headers;
	signal: AbortSignal;
}

/** A failure of the connection itself, not an HTTP answer: the provider's fetch rejects. */
export class MockConnectionError extends Error {
	override name = "MockConnectionError";
}

const FAULT_HEADER = "x-mock-fault";
const FIELD_REQUIRED = "Field required";

export function newStats(): MockStats {
	return {
		requests: 0,
		ok: 0,
		rateLimited: 0,
		byStatus: {},
		promptTokens: 0,
		completionTokens: 0,
	};
}

export class Simulator {
	options: MockOptions;
	stats: MockStats = newStats();
	limiter: MockLimiter;
	readonly nowMs: () => number;

	constructor(options: MockOptions, nowMs: () => number) {
		this.options = options;
		this.nowMs = nowMs;
		this.limiter = new MockLimiter(options, nowMs());
	}

	/** The provider's 401 when a key is configured and the request does not carry exactly it. */
	authenticate(request: Request, dialect: Dialect): Response | undefined {
		const { apiKey } = this.options;
		const sentKey = dialect.apiKeyOf(request);
		return apiKey !== undefined && sentKey !== apiKey ? dialect.unauthorized(sentKey) : undefined;
	}

	/** Every step before the answer; a Response means the request ends there. */
	async admit<Schema extends v.GenericSchema>(
		request: Request,
		dialect: Dialect,
		schema: Schema,
		ask: (body: v.InferOutput<Schema>) => Ask,
	): Promise<Response | Admitted<v.InferOutput<Schema>>> {
		const refusal = this.authenticate(request, dialect);
		if (refusal) return refusal;

		let json: unknown;
		try {
			json = JSON.parse(await request.text());
		} catch {
			return dialect.badRequest({ kind: "json" });
		}
		this.stats.lastBody = json;
		const parsed = v.safeParse(schema, json, {
			message: (issue) => (issue.input === undefined ? FIELD_REQUIRED : issue.message),
		});
		if (!parsed.success) {
			const [issue] = parsed.issues;
			return dialect.badRequest({
				kind: "field",
				param: v.getDotPath(issue) ?? "",
				missing: issue.message === FIELD_REQUIRED,
				detail: issue.message,
			});
		}
		const fault = request.headers.get(FAULT_HEADER) ?? this.options.fault ?? "none";
		if (!isFault(fault)) {
			return dialect.badRequest({
				kind: "header",
				name: FAULT_HEADER,
				detail: `must be one of ${MOCK_FAULTS.join(", ")}`,
			});
		}

		const { model, prompt, maxTokens } = ask(parsed.output);
		const promptTokens = promptTokensOf(prompt);
		const completionTokens = Math.min(this.options.completionTokens, maxTokens ?? Infinity);
		const nowMs = this.nowMs();
		const decision = this.limiter.tryCharge(promptTokens + completionTokens, nowMs);
		const headers = new Headers(dialect.limitHeaders(decision.limits, nowMs));
		if (decision.kind === "limited") {
			return withHeaders(dialect.rateLimited(decision, model), headers);
		}

		const { signal } = request;
		if (fault === "reset") throw new MockConnectionError("mock fault: connection reset");
		if (fault === "hang") await untilAborted(signal);
		await sleep(this.options.latencyMs, signal);
		if (fault === "500" || fault === "503" || fault === "529") {
			return withHeaders(dialect.serverFault(fault), headers);
		}
		return {
			body: parsed.output,
			model,
			promptTokens,
			completionTokens,
			pieces: answerPieces(completionTokens),
			truncated: completionTokens < this.options.completionTokens,
			createdS: Math.floor(nowMs / 1000),
			fault,
			headers,
			signal,
		};
	}

	/** A 200 JSON answer; under `cut-stream` the body breaks half-way. */
	json(admitted: Admitted<unknown>, body: unknown): Response {
		const text = JSON.stringify(body);
		admitted.headers.set("content-type", "application/json");
		if (admitted.fault === "cut-stream") {
			const half = Math.floor(text.length / 2);
			const cut = pacedBody([text.slice(0, half), text.slice(half)], {
				gapMs: 0,
				cutAfterPieces: 1,
				signal: admitted.signal,
			});
			return new Response(cut, { headers: admitted.headers });
		}
		this.#countUsage(admitted);
		return new Response(text, { headers: admitted.headers });
	}

	/** A 200 SSE answer, frames `chunkDelayMs` apart (×20 under `slow-stream`, half of them under `cut-stream`). */
	stream(admitted: Admitted<unknown>, frames: string[]): Response {
		const slowdown = admitted.fault === "slow-stream" ? 20 : 1;
		const cut = admitted.fault === "cut-stream";
		if (!cut) this.#countUsage(admitted);
		const body = pacedBody(frames, {
			gapMs: this.options.chunkDelayMs * slowdown,
			cutAfterPieces: cut ? Math.floor(frames.length / 2) : undefined,
			signal: admitted.signal,
		});
		admitted.headers.set("content-type", "text/event-stream; charset=utf-8");
		admitted.headers.set("cache-control", "no-cache");
		return new Response(body, { headers: admitted.headers });
	}

	#countUsage(admitted: Admitted<unknown>): void {
		this.stats.promptTokens += admitted.promptTokens;
		this.stats.completionTokens += admitted.completionTokens;
	}
}

function isFault(value: string): value is MockFault {
	return (MOCK_FAULTS as readonly string[]).includes(value);
}

function withHeaders(response: Response, headers: Headers): Response {
	headers.forEach((value, name) => {
		response.headers.set(name, value);
	});
	return response;
}
