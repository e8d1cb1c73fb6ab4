// Talking to the provider: which headers cross in each direction (by allow-list), scrubbing secrets
// from its answers, the upstream URL (only ever under the pool's base URL), the timed fetch, and
// relaying a stream to the caller.
import type { PoolConfig } from "../config.ts";
import type { Provider, StreamMeter } from "../providers/types.ts";
import { GatewayError } from "./errors.ts";

/** Client headers of every API that cross as sent: content negotiation and the SDK's identity. */
const CLIENT_HEADERS_FORWARDED = ["content-type", "accept", "user-agent"];
/** The official SDKs' version and retry headers (x-stainless-lang, -package-version, -retry-count…). */
const CLIENT_HEADER_PREFIX_FORWARDED = "x-stainless-";

/**
 * The headers sent to the provider, by allow-list: the common ones, the provider's own (e.g.
 * anthropic-version), the beta values and extra headers `pool` permits, the pool's organization
 * and project, and the pool's key. Anything else the client sent stays behind.
 */
export function upstreamRequestHeaders(
	client: Headers,
	provider: Provider,
	apiKey: string,
	pool: Pick<PoolConfig, "allowedBetas" | "forwardHeaders" | "organization" | "project">,
): Headers {
	const headers = new Headers();
	const forwarded = forwardedNames(provider, pool);
	client.forEach((value, name) => {
		if (forwarded.has(name) || name.startsWith(CLIENT_HEADER_PREFIX_FORWARDED)) {
			headers.set(name, value);
		}
	});
	const betas = permittedBetas(client.get(provider.betaHeader), pool.allowedBetas);
	if (betas) headers.set(provider.betaHeader, betas);
	if (pool.organization) headers.set("openai-organization", pool.organization);
	if (pool.project) headers.set("openai-project", pool.project);
	for (const [name, value] of Object.entries(provider.authHeaders(apiKey)))
		headers.set(name, value);
	return headers;
}

/** Each pool's forwarded header names, built once: a parsed config and its pools are reused. */
const forwardedByPool = new WeakMap<object, { provider: Provider; names: Set<string> }>();

function forwardedNames(
	provider: Provider,
	pool: Pick<PoolConfig, "forwardHeaders">,
): ReadonlySet<string> {
	let cached = forwardedByPool.get(pool);
	if (cached?.provider !== provider) {
		const names = [
			...CLIENT_HEADERS_FORWARDED,
			...provider.forwardedHeaders,
			...pool.forwardHeaders,
		];
		cached = { provider, names: new Set(names) };
		forwardedByPool.set(pool, cached);
	}
	return cached.names;
}

/** The values of a comma-separated beta header that the pool permits ("*" permits any). */
function permittedBetas(value: string | null, allowed: readonly string[]): string | undefined {
	if (value === null) return undefined;
	const permitted = value
		.split(",")
		.map((beta) => beta.trim())
		.filter((beta) => beta !== "" && (allowed.includes("*") || allowed.includes(beta)));
	return permitted.length > 0 ? permitted.join(",") : undefined;
}

/**
 * Provider headers the caller gets: the content type and the provider's request ids and timings.
 * The rate-limit view is tollbooth's own (set after), and nothing else crosses: cookies, the
 * operator's organization, the provider's framing.
 */
const PROVIDER_HEADERS_RELAYED = new Set([
	"content-type",
	"cache-control",
	"x-request-id",
	"request-id",
	"openai-processing-ms",
	"openai-version",
	"openai-model",
	"anthropic-version",
	"retry-after",
	"retry-after-ms",
	"x-should-retry",
]);

/** The provider's answer headers for the caller, by allow-list, each value scrubbed of secrets. */
export function callerResponseHeaders(upstream: Headers, apiKey: string): Headers {
	const headers = new Headers();
	upstream.forEach((value, name) => {
		if (PROVIDER_HEADERS_RELAYED.has(name)) headers.set(name, scrubSecrets(value, apiKey));
	});
	return headers;
}

const REDACTED = "[redacted]";
/** Provider key formats: sk-…, sk-proj-…, sk-ant-api03-…, also masked (sk-proj-****abcd). */
const KEY_PREFIXED = /\bsk-[A-Za-z0-9_*-]{8,}/g;
/**
 * A long opaque token right after a word that names a credential ("key: …", "Bearer …",
 * "token=…"). 16+ characters with a digit: long enough not to be a word of prose.
 */
const AFTER_KEY_WORD =
	/\b(api[_ -]?key|key|token|secret|password|bearer|authorization|credentials?)(\b(?:\s+(?:provided|given|used|is|was))?[\s"':=]{0,4})([A-Za-z0-9_.~+/=-]{16,})/gi;
/** Runs of key characters; a run that is a long piece of the pool's key is a partial quote of it. */
const KEY_CHARACTER_RUN = /[A-Za-z0-9_-]{12,}/g;

/**
 * `text` with the pool's key (whole or a 12+ character piece of it) and anything key-shaped
 * replaced by "[redacted]": for provider error bodies and headers before a client or a log sees them.
 */
export function scrubSecrets(text: string, apiKey: string): string {
	return scrubKey(text, apiKey)
		.replace(KEY_PREFIXED, REDACTED)
		.replace(AFTER_KEY_WORD, (match, word: string, gap: string, token: string) =>
			/\d/.test(token) ? `${word}${gap}${REDACTED}` : match,
		);
}

/** `text` with the pool's key, whole or a 12+ character piece of it, replaced by "[redacted]". */
export function scrubKey(text: string, apiKey: string): string {
	if (apiKey === "") return text;
	return text
		.replaceAll(apiKey, REDACTED)
		.replace(KEY_CHARACTER_RUN, (run) => (apiKey.includes(run) ? REDACTED : run));
}

/**
 * The provider URL for `rest` (the path after /v1, with its query): always under the pool's base
 * URL, so a crafted path can never send the pool's key to another host or API root.
 */
export function upstreamUrl(baseUrl: string, rest: string, search: string): URL {
	const { origin, basePath } = parsedBase(baseUrl);
	const segments = rest.split("/").filter((segment) => segment !== "");
	if (segments.some((segment) => segment === "." || segment === ".." || segment.includes("\\"))) {
		throw new GatewayError(400, `The path "${rest}" is not a valid API path.`, "bad_path");
	}
	const url = new URL(`${origin}${basePath}/${segments.join("/")}${search}`);
	if (url.origin !== origin || !url.pathname.startsWith(`${basePath}/`)) {
		throw new GatewayError(400, `The path "${rest}" is not a valid API path.`, "bad_path");
	}
	return url;
}

/** Each base URL's origin and path (no trailing "/"), parsed once: the pools' base URLs are few. */
const baseByUrl = new Map<string, { origin: string; basePath: string }>();

function parsedBase(baseUrl: string): { origin: string; basePath: string } {
	let base = baseByUrl.get(baseUrl);
	if (!base) {
		const url = new URL(baseUrl);
		base = { origin: url.origin, basePath: url.pathname.replace(/\/+$/, "") };
		baseByUrl.set(baseUrl, base);
	}
	return base;
}

export type UpstreamLimit = "first byte" | "total" | "idle";

/**
 * One upstream call's time limits: whichever is armed aborts the call when it passes, and
 * `expired` says which; the caller's leaving aborts it too. One timer serves every limit armed in
 * turn: a limit that ends no sooner than the timer leaves it running, and the timer, when it fires
 * early, waits on for the rest (so a stream's chunks move the idle limit without a timer each).
 */
export class UpstreamDeadline {
	readonly #controller = new AbortController();
	readonly signal: AbortSignal;
	#timer: ReturnType<typeof setTimeout> | undefined;
	#timerDueMs = 0;
	/** The armed limit, its length and when it passes; undefined when disarmed. */
	#limit: UpstreamLimit | undefined;
	#limitMs = 0;
	#dueMs = 0;
	expired: { limit: UpstreamLimit; ms: number } | undefined;

	readonly callerSignal: AbortSignal;
	/** The provider URL, named (host and path, never the query) when it cannot be reached. */
	readonly url: URL;

	constructor(callerSignal: AbortSignal, url: URL) {
		this.callerSignal = callerSignal;
		this.url = url;
		this.signal = AbortSignal.any([callerSignal, this.#controller.signal]);
	}

	arm(limit: UpstreamLimit, ms: number): void {
		this.#limit = limit;
		this.#limitMs = ms;
		this.#dueMs = Date.now() + ms;
		if (this.#timer !== undefined && this.#timerDueMs <= this.#dueMs) return;
		clearTimeout(this.#timer);
		this.#wakeIn(ms);
	}

	#wakeIn(ms: number): void {
		this.#timerDueMs = Date.now() + ms;
		this.#timer = setTimeout(() => {
			this.#timer = undefined;
			const limit = this.#limit;
			if (limit === undefined) return;
			const leftMs = this.#dueMs - Date.now();
			if (leftMs > 0) return this.#wakeIn(leftMs);
			this.expired = { limit, ms: this.#limitMs };
			this.#controller.abort();
		}, ms);
	}

	/**
	 * Ends the upstream call now, body included: workerd closes the provider's connection at once
	 * on an aborted fetch, whatever state the stream's pipe is in.
	 */
	abort(): void {
		this.disarm();
		this.#controller.abort();
	}

	disarm(): void {
		clearTimeout(this.#timer);
		this.#timer = undefined;
		this.#limit = undefined;
	}

	/** The error to answer with when the call failed. */
	failure(error: unknown): GatewayError {
		if (this.callerSignal.aborted) {
			return new GatewayError(499, "The caller closed the request.", "cancelled");
		}
		if (this.expired) {
			const { limit, ms } = this.expired;
			const what =
				limit === "first byte"
					? "did not answer"
					: limit === "total"
						? "did not finish"
						: "went silent";
			return new GatewayError(
				504,
				`The provider ${what} within ${ms} ms (${limit} timeout).`,
				"timeout",
			);
		}
		return new GatewayError(
			502,
			`The provider at ${this.url.host}${this.url.pathname} could not be reached or broke off: ${(error as Error).message}`,
			"connection_failed",
		);
	}
}

export type StreamEnd = "completed" | "caller_gone" | "upstream_broke";

/**
 * Relays the provider's SSE body to the caller through the usage meter, chunk by chunk. When the
 * provider breaks the stream, the caller gets the provider's own error event and a clean end;
 * when the caller goes away, the provider's body is cancelled. `ended` settles exactly once.
 * No event carries the pool's key, and an error event nothing key-shaped.
 */
export function relayStream(
	body: ReadableStream<Uint8Array>,
	meter: StreamMeter,
	provider: Provider,
	onChunk: () => void,
	apiKey: string,
): { readable: ReadableStream<Uint8Array>; ended: Promise<StreamEnd> } {
	const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
	const reader = body.pipeThrough(meter.stream).pipeThrough(scrubbedEvents(apiKey)).getReader();
	const writer = writable.getWriter();
	// A caller that leaves while the provider is silent must not wait for the provider's next chunk.
	let callerGone = false;
	writer.closed.catch(() => {
		callerGone = true;
		reader.cancel().catch(() => {});
	});
	const ended = (async (): Promise<StreamEnd> => {
		for (;;) {
			let chunk: ReadableStreamReadResult<Uint8Array>;
			try {
				chunk = await reader.read();
			} catch {
				const message = "The provider's stream broke before it finished.";
				await writer
					.write(new TextEncoder().encode(provider.errorEvent(502, message)))
					.catch(() => {});
				await writer.close().catch(() => {});
				return "upstream_broke";
			}
			// The cancel above ends the read as if the provider had finished: it had not.
			if (chunk.done && callerGone) return "caller_gone";
			if (chunk.done) {
				await writer.close().catch(() => {});
				return "completed";
			}
			onChunk();
			try {
				await writer.write(chunk.value);
			} catch {
				await reader.cancel().catch(() => {});
				return "caller_gone";
			}
		}
	})();
	return { readable, ended };
}

/** An SSE event's end: a blank line, after LF or CRLF line ends. */
const EVENT_END = /\r?\n\r?\n/g;
/** An event that reports an error (either provider's shape): its text is scrubbed in full. */
const ERROR_EVENT = /^event:\s*error|"error"|"type"\s*:\s*"(?:error|response\.failed)"/m;

/**
 * Passes SSE text on event by event (a key split across two chunks is still seen whole), each event
 * scrubbed of the pool's key and, when it reports an error, of anything key-shaped.
 */
function scrubbedEvents(apiKey: string): TransformStream<Uint8Array, Uint8Array> {
	const decoder = new TextDecoder();
	const encoder = new TextEncoder();
	let pending = "";
	const scrub = (event: string) =>
		ERROR_EVENT.test(event) ? scrubSecrets(event, apiKey) : scrubKey(event, apiKey);
	return new TransformStream({
		transform(chunk, controller) {
			pending += decoder.decode(chunk, { stream: true });
			let end = 0;
			for (const match of pending.matchAll(EVENT_END)) end = match.index + match[0].length;
			if (end === 0) return;
			controller.enqueue(encoder.encode(scrub(pending.slice(0, end))));
			pending = pending.slice(end);
		},
		flush(controller) {
			pending += decoder.decode();
			if (pending !== "") controller.enqueue(encoder.encode(scrub(pending)));
		},
	});
}
