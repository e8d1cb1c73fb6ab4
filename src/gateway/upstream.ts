// Talking to the provider: which headers cross in each direction, the upstream URL (only ever under
// the pool's configured base URL), the timed fetch, and relaying a stream to the caller.
import type { Provider, StreamMeter } from "../providers/types.ts";
import { GatewayError } from "./errors.ts";

/** Client headers that never reach the provider: credentials, hop-by-hop, and tollbooth's own. */
const CLIENT_HEADERS_DROPPED = new Set([
	"authorization",
	"x-api-key",
	"api-key",
	"cookie",
	"host",
	"content-length",
	"connection",
	"keep-alive",
	"transfer-encoding",
	"te",
	"upgrade",
	"accept-encoding",
	"x-priority",
	"x-max-wait-ms",
	"x-real-ip",
]);
const CLIENT_HEADER_PREFIXES_DROPPED = ["cf-", "x-forwarded-", "proxy-", "x-tollbooth-"];

/** Provider headers the caller does not get: ours replace the rate-limit view; the rest are framing or
 * identify the operator's provider account. */
const PROVIDER_HEADERS_DROPPED = new Set([
	"content-length",
	"content-encoding",
	"transfer-encoding",
	"connection",
	"keep-alive",
	"set-cookie",
	"openai-organization",
	"openai-project",
	"anthropic-organization-id",
]);
const PROVIDER_HEADER_PREFIXES_DROPPED = ["x-ratelimit-", "cf-"];

function dropped(name: string, names: Set<string>, prefixes: string[]): boolean {
	return names.has(name) || prefixes.some((prefix) => name.startsWith(prefix));
}

export function upstreamRequestHeaders(
	client: Headers,
	provider: Provider,
	apiKey: string,
): Headers {
	const headers = new Headers();
	client.forEach((value, name) => {
		if (!dropped(name, CLIENT_HEADERS_DROPPED, CLIENT_HEADER_PREFIXES_DROPPED))
			headers.set(name, value);
	});
	for (const [name, value] of Object.entries(provider.authHeaders(apiKey)))
		headers.set(name, value);
	return headers;
}

export function callerResponseHeaders(upstream: Headers): Headers {
	const headers = new Headers();
	upstream.forEach((value, name) => {
		if (!dropped(name, PROVIDER_HEADERS_DROPPED, PROVIDER_HEADER_PREFIXES_DROPPED))
			headers.set(name, value);
	});
	return headers;
}

/**
 * The provider URL for `rest` (the path after /v1, with its query): always under the pool's base
 * URL, so a crafted path can never send the pool's key to another host or API root.
 */
export function upstreamUrl(baseUrl: string, rest: string, search: string): URL {
	const base = new URL(baseUrl);
	const basePath = base.pathname.replace(/\/+$/, "");
	const segments = rest.split("/").filter((segment) => segment !== "");
	if (segments.some((segment) => segment === "." || segment === ".." || segment.includes("\\"))) {
		throw new GatewayError(400, `The path "${rest}" is not a valid API path.`, "bad_path");
	}
	const url = new URL(`${base.origin}${basePath}/${segments.join("/")}${search}`);
	if (url.origin !== base.origin || !url.pathname.startsWith(`${basePath}/`)) {
		throw new GatewayError(400, `The path "${rest}" is not a valid API path.`, "bad_path");
	}
	return url;
}

export type UpstreamLimit = "first byte" | "total" | "idle";

/**
 * One upstream call's time limits: whichever is armed aborts the call when it passes, and
 * `expired` says which; the caller's leaving aborts it too.
 */
export class UpstreamDeadline {
	readonly #controller = new AbortController();
	readonly signal: AbortSignal;
	#timer: ReturnType<typeof setTimeout> | undefined;
	expired: { limit: UpstreamLimit; ms: number } | undefined;

	constructor(readonly callerSignal: AbortSignal) {
		this.signal = AbortSignal.any([callerSignal, this.#controller.signal]);
	}

	arm(limit: UpstreamLimit, ms: number): void {
		clearTimeout(this.#timer);
		this.#timer = setTimeout(() => {
			this.expired = { limit, ms };
			this.#controller.abort();
		}, ms);
	}

	disarm(): void {
		clearTimeout(this.#timer);
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
			`The provider could not be reached or broke off: ${(error as Error).message}`,
			"connection_failed",
		);
	}
}

export type StreamEnd = "completed" | "caller_gone" | "upstream_broke";

/**
 * Relays the provider's SSE body to the caller through the usage meter, chunk by chunk. When the
 * provider breaks the stream, the caller gets the provider's own error event and a clean end;
 * when the caller goes away, the provider's body is cancelled. `ended` settles exactly once.
 */
export function relayStream(
	body: ReadableStream<Uint8Array>,
	meter: StreamMeter,
	provider: Provider,
	onChunk: () => void,
): { readable: ReadableStream<Uint8Array>; ended: Promise<StreamEnd> } {
	const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
	const reader = body.pipeThrough(meter.stream).getReader();
	const writer = writable.getWriter();
	// A caller that leaves while the provider is silent must not wait for the provider's next chunk.
	writer.closed.catch(() => reader.cancel().catch(() => {}));
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
